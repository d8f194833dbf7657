"""The provisioned Grafana dashboard: it parses, reads the provisioned data source, and every
series it queries is one the e2e shows Prometheus scraping (prometheus.SCRAPED_METRICS)."""

from __future__ import annotations

import json
import re

import yaml

from components.specs import prometheus
from components.versions import REPO_ROOT

GRAFANA = REPO_ROOT / "observability" / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "mlflow.json"
DATASOURCE = GRAFANA / "provisioning" / "datasources" / "prometheus.yml"
# PromQL words that are not series names (no function: those are followed by "(").
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "and", "or", "unless", "bool", "offset"}


def series_names(expr: str) -> set[str]:
    """Names of the series a PromQL expression selects."""
    bare = re.sub(r"\{[^}]*\}|\[[^\]]*\]", "", expr)  # label matchers and range selectors
    bare = re.sub(r"\b(by|without)\s*\([^)]*\)", "", bare)  # grouping labels
    names = set(re.findall(r"[A-Za-z_:][A-Za-z0-9_:]*(?!\s*\()\b", bare))
    return {name for name in names if name not in KEYWORDS and not re.fullmatch(r"[eE]\d*", name)}


def test_series_names_reads_selectors_not_functions_or_labels():
    expr = 'histogram_quantile(0.99, sum by (le) (rate(x_bucket{status=~"5.."}[5m]))) / max(up)'
    assert series_names(expr) == {"x_bucket", "up"}


def test_dashboard_parses_and_queries_only_scraped_series():
    dashboard = json.loads(DASHBOARD.read_text())
    uid = yaml.safe_load(DATASOURCE.read_text())["datasources"][0]["uid"]
    exprs = []
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == uid, panel["title"]
        exprs += [target["expr"] for target in panel["targets"]]
    named = set().union(*map(series_names, exprs))
    assert named <= set(prometheus.SCRAPED_METRICS), named - set(prometheus.SCRAPED_METRICS)
    # The panels the issue asks for that the scraped series can draw.
    titles = {panel["title"] for panel in dashboard["panels"]}
    assert {"Latency p50", "Latency p95", "Latency p99", "DB size", "DB connections vs max_connections"} <= titles
    assert len(dashboard["panels"]) == len({panel["id"] for panel in dashboard["panels"]})
