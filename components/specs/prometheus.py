"""Prometheus for the dev stack: the scrape config, rendered from the topology.

One job per kind of target: the MLflow servers (their `--expose-prometheus` endpoint, on
the backend network), postgres_exporter, the proxy's mtail (nginx's own answers), the object
store (its bucket sizes), and Prometheus itself. The alert rules are a file
of the repo (observability/prometheus/alerts.yml), the same conditions as prod's alarms;
Docker uploads it, the e2e points Prometheus at it where it is.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from components.specs import minio, proxy_metrics, seaweedfs
from components.specs.health import HealthCheck
from components.versions import REPO_ROOT
from images.mlflow import server_contract as contract

PROMETHEUS_PORT = 9090
POSTGRES_EXPORTER_PORT = 9187
# Their names on the dev stack's backend network (Grafana's data source names Prometheus's).
PROMETHEUS_HOST = "prometheus"
POSTGRES_EXPORTER_HOST = "postgres-exporter"
RULES_DIR = REPO_ROOT / "observability" / "prometheus"
ALERT_RULES = RULES_DIR / "alerts.yml"
# Job names: the alert rules select on them (`up{job="mlflow"}`).
MLFLOW_JOB = "mlflow"
POSTGRES_JOB = "postgres"
PROMETHEUS_JOB = "prometheus"
PROXY_JOB = "proxy"
OBJECT_STORE_JOB = "object-store"
# Series the alert rules and the Grafana dashboard read, as Prometheus stores them; the e2e
# (tests/e2e/test_prometheus.py) shows each one scraped from the real servers and exporter.
SCRAPED_METRICS = (
    "up",
    # The server image's own series (images/mlflow/request_metrics.py), by route template.
    contract.METRIC_REQUESTS + "_total",
    contract.METRIC_LATENCY + "_bucket",
    contract.METRIC_REQUEST_BYTES + "_total",
    contract.METRIC_RESPONSE_BYTES + "_total",
    contract.METRIC_MEMORY,
    "pg_up",
    "pg_settings_max_connections",
    "pg_stat_activity_count",
    "pg_database_size_bytes",
    # nginx's request lines, counted by mtail (components/specs/proxy_metrics.py).
    proxy_metrics.METRIC_REQUESTS,
    proxy_metrics.METRIC_DURATION + "_bucket",
    proxy_metrics.METRIC_UPSTREAM_DURATION + "_bucket",
    proxy_metrics.METRIC_REQUEST_BYTES,
    proxy_metrics.METRIC_RESPONSE_BYTES,
    # The bucket's size, as the e2e's S3 server (SeaweedFS) reports it.
    seaweedfs.BUCKET_SIZE_METRIC,
)
# What the dashboard reads that no test here can show scraped: MinIO's bucket size (the dev
# default's engine; the e2e's S3 server is SeaweedFS, and no MinIO binary is installable here).
# Its name and path are MinIO's documented v2 bucket metrics (components/specs/minio.py).
MINIO_ONLY_METRICS = (minio.BUCKET_SIZE_METRIC,)
# Short enough that a stopped server or database is seen within a minute.
SCRAPE_INTERVAL_SECONDS = 15
EVALUATION_INTERVAL_SECONDS = 15


@dataclass(frozen=True)
class ScrapeTargets:
    """Where each job's endpoints are, as `host:port` the scraper can reach."""

    mlflow: Sequence[str]
    postgres_exporter: Sequence[str] = ()
    prometheus: Sequence[str] = ()
    proxy: Sequence[str] = ()
    """mtail, counting nginx's request lines."""
    object_store: Sequence[str] = ()
    object_store_path: str = "/metrics"
    """The S3 server's metrics (MinIO serves them on its S3 port, under its own path)."""


def scrape_config(
    targets: ScrapeTargets,
    *,
    rule_files: Sequence[str],
    scrape_interval_seconds: int = SCRAPE_INTERVAL_SECONDS,
    evaluation_interval_seconds: int = EVALUATION_INTERVAL_SECONDS,
) -> dict:
    """prometheus.yml as data: a job for every kind of target that has endpoints."""
    jobs = [
        (MLFLOW_JOB, contract.METRICS_PATH, targets.mlflow),
        (POSTGRES_JOB, "/metrics", targets.postgres_exporter),
        (PROMETHEUS_JOB, "/metrics", targets.prometheus),
        (PROXY_JOB, "/metrics", targets.proxy),
        (OBJECT_STORE_JOB, targets.object_store_path, targets.object_store),
    ]
    return {
        "global": {
            "scrape_interval": f"{scrape_interval_seconds}s",
            "evaluation_interval": f"{evaluation_interval_seconds}s",
        },
        "rule_files": list(rule_files),
        "scrape_configs": [
            {"job_name": job, "metrics_path": path, "static_configs": [{"targets": list(endpoints)}]}
            for job, path, endpoints in jobs
            if endpoints
        ],
    }


def render_scrape_config(targets: ScrapeTargets, *, rule_files: Sequence[str], **intervals: int) -> str:
    """The config file's text: JSON, which Prometheus' YAML parser reads as it is."""
    return json.dumps(scrape_config(targets, rule_files=rule_files, **intervals), indent=2) + "\n"


# The dev container (the official image: busybox, /bin/prometheus as its entrypoint, uid nobody).
CONFIG_FILE = "/etc/prometheus/prometheus.yml"
CONTAINER_RULES_DIR = "/etc/prometheus/rules"
DATA_DIR = "/prometheus"


@dataclass(frozen=True)
class PrometheusContainer:
    command: tuple[str, ...]
    uploads: tuple[tuple[str, str], ...]
    """(path in the container, content): the rendered scrape config and the repo's rule files."""
    health: HealthCheck
    data_dir: str = DATA_DIR


def prometheus_container(targets: ScrapeTargets, *, retention_days: int) -> PrometheusContainer:
    """Prometheus as the dev stack runs it: the same render of the scrape config as the e2e, the
    repo's alert rules beside it, samples kept `retention_days` on its volume."""
    rules = {f"{CONTAINER_RULES_DIR}/{ALERT_RULES.name}": ALERT_RULES.read_text()}
    config = render_scrape_config(targets, rule_files=sorted(rules))
    return PrometheusContainer(
        command=(
            f"--config.file={CONFIG_FILE}",
            f"--storage.tsdb.path={DATA_DIR}",
            f"--storage.tsdb.retention.time={retention_days}d",
            f"--web.listen-address=:{PROMETHEUS_PORT}",
        ),
        uploads=((CONFIG_FILE, config), *sorted(rules.items())),
        # busybox's wget; /-/ready answers 200 once the TSDB is open and the config loaded.
        health=HealthCheck(
            command=("wget", "-q", "-O", "/dev/null", f"http://127.0.0.1:{PROMETHEUS_PORT}/-/ready"),
            start_period_seconds=60,
        ),
    )
