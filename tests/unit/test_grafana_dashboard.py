"""The provisioned Grafana dashboard: it parses, reads the provisioned data source, and every
series it queries is one the e2e shows Prometheus scraping (prometheus.SCRAPED_METRICS), but for
MinIO's bucket size (prometheus.MINIO_ONLY_METRICS), which only MinIO serves."""

from __future__ import annotations

import json

import yaml

from components.specs import prometheus
from components.versions import REPO_ROOT
from testkit.promql import series_names

GRAFANA = REPO_ROOT / "observability" / "grafana"
DASHBOARD = GRAFANA / "dashboards" / "mlflow.json"
DATASOURCE = GRAFANA / "provisioning" / "datasources" / "prometheus.yml"


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
    known = {*prometheus.SCRAPED_METRICS, *prometheus.MINIO_ONLY_METRICS}
    assert named <= known, named - known
    # MinIO's series only beside the SeaweedFS one the e2e shows, in the same panel.
    (bucket_size,) = [e for e in exprs if set(prometheus.MINIO_ONLY_METRICS) & series_names(e)]
    assert series_names(bucket_size) == {*prometheus.MINIO_ONLY_METRICS, "SeaweedFS_s3_bucket_size_bytes"}
    # The panels the issue asks for that the scraped series can draw.
    titles = {panel["title"] for panel in dashboard["panels"]}
    assert {
        "Request rate by endpoint",
        "Latency p50 by endpoint",
        "Latency p95 by endpoint",
        "Latency p99 by endpoint",
        "Error rate (5xx share)",
        "413 and 504 answers (15 min)",
        "Artifact uploads and downloads",
        "Server memory (PSS of each server's process tree)",
        "DB size",
        "DB connections vs max_connections",
        "Bucket size",
        "Proxy answers by status",
    } <= titles
    assert len(dashboard["panels"]) == len({panel["id"] for panel in dashboard["panels"]})
