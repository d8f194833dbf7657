"""The dev stack's Prometheus files pass Prometheus' own checks: the rendered scrape config,
and alert rules each shown firing on its condition (`promtool test rules`)."""

from __future__ import annotations

import shutil
import subprocess

import yaml

from components.specs import prometheus
from components.specs.prometheus import ScrapeTargets, render_scrape_config
from testkit.promql import series_names

RULE_TESTS = prometheus.RULES_DIR / "tests" / "alerts_test.yml"


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("promtool")
    assert binary, "promtool is not installed (Debian: apt-get install prometheus)"
    return subprocess.run([binary, *args], capture_output=True, text=True, timeout=60, check=False)


def test_every_alert_rule_fires_on_its_condition():
    result = promtool("test", "rules", str(RULE_TESTS))
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_rule_has_a_firing_case():
    rules = yaml.safe_load(prometheus.ALERT_RULES.read_text())
    alerts = {rule["alert"] for group in rules["groups"] for rule in group["rules"]}
    cases = yaml.safe_load(RULE_TESTS.read_text())["tests"]
    fired = {check["alertname"] for case in cases for check in case["alert_rule_test"] if check["exp_alerts"]}
    assert alerts == fired
    # The conditions prod alarms on: server down, 5xx, p99, 4xx/413, database down/connections/size,
    # and the proxy's 5xx (prod's ALB 5xx alarm).
    assert len(alerts) == 9


def test_alert_rules_read_only_series_the_e2e_shows_scraped():
    rules = yaml.safe_load(prometheus.ALERT_RULES.read_text())
    named = set().union(*(series_names(rule["expr"]) for group in rules["groups"] for rule in group["rules"]))
    assert named <= set(prometheus.SCRAPED_METRICS), named - set(prometheus.SCRAPED_METRICS)
    # Requests by every route the server answers: ours, not MLflow's (which misses FastAPI's).
    assert "mlflow_http_request_total" not in named


def test_rendered_scrape_config_passes_promtool(tmp_path):
    targets = ScrapeTargets(
        mlflow=["mlflow-0:5000", "mlflow-1:5000"],
        postgres_exporter=["pg-exporter:9187"],
        proxy=["proxy-metrics:3903"],
        object_store=["minio:9000"],
        object_store_path="/minio/v2/metrics/bucket",
    )
    config = tmp_path / "prometheus.yml"
    config.write_text(render_scrape_config(targets, rule_files=[str(prometheus.ALERT_RULES)]))
    result = promtool("check", "config", str(config))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 9 rules found" in result.stdout
    jobs = {job["job_name"]: job for job in yaml.safe_load(config.read_text())["scrape_configs"]}
    assert jobs["mlflow"]["metrics_path"] == "/metrics"
    assert jobs["mlflow"]["static_configs"] == [{"targets": ["mlflow-0:5000", "mlflow-1:5000"]}]
    assert jobs["object-store"]["metrics_path"] == "/minio/v2/metrics/bucket"
    assert jobs["proxy"]["static_configs"] == [{"targets": ["proxy-metrics:3903"]}]
    # No endpoints, no job (Prometheus refuses none of it, but an empty job is noise).
    assert "prometheus" not in jobs
