"""MLflow's Prometheus endpoint: every server answers it on its own address, its counters
follow what clients do, and the public proxy never serves it. Beside MLflow's series, ours
(images/mlflow/request_metrics.py): per route template, with body bytes and the tree's memory."""

from __future__ import annotations

import os
import tempfile

import mlflow
import pytest
import requests

from images.mlflow import server_contract as contract

from .helpers import get, sample_sum, scrape, unique

pytestmark = pytest.mark.e2e

REQUESTS = "mlflow_http_request"
DURATION = "mlflow_http_request_duration_seconds"


SEARCH = "/api/2.0/mlflow/experiments/search?max_results=1"


def posts_answered(samples: dict[str, list]) -> float:
    """POSTs the server answered 200, over all its workers (multiprocess files summed)."""
    return sample_sum(samples, REQUESTS, method="POST", status="200")


def duration_count(samples: dict[str, list]) -> float:
    return sample_sum(samples, DURATION, "_count")


def test_each_server_exports_request_counters_and_latency_histograms(stack):
    for inst in stack.instances:
        assert get(inst.url + SEARCH).status_code == 200
        samples = scrape(inst.url)
        assert REQUESTS in samples and DURATION in samples, inst.name
        buckets = [s for s in samples[DURATION] if s.name == f"{DURATION}_bucket"]
        assert {"method", "status"} <= set(buckets[0].labels), buckets[0].labels


def test_counters_move_when_the_client_logs(tracking):
    before = [scrape(inst.url) for inst in tracking.instances]
    mlflow.set_experiment(unique("metrics"))
    metrics = 5
    with mlflow.start_run():
        for step in range(metrics):
            mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
    after = [scrape(inst.url) for inst in tracking.instances]
    # create experiment, create run, one log-metric each, update run: all POSTs answered 200.
    assert sum(map(posts_answered, after)) - sum(map(posts_answered, before)) >= metrics + 3
    assert sum(map(duration_count, after)) - sum(map(duration_count, before)) >= metrics + 3


def total_over(instances, family: str, suffix: str = "_total", **labels: str) -> float:
    return sum(sample_sum(scrape(inst.url), family, suffix, **labels) for inst in instances)


UPLOAD_TEMPLATE = "/api/2.0/mlflow-artifacts/artifacts/{artifact_path:path}"


def test_platform_series_count_each_endpoint_by_its_route_template(tracking):
    servers = tracking.instances
    log_metric = {"endpoint": "/api/2.0/mlflow/runs/log-metric", "method": "POST"}
    before = total_over(servers, contract.METRIC_REQUESTS, **log_metric, status="200")
    before_latency = total_over(servers, contract.METRIC_LATENCY, "_count", **log_metric)
    mlflow.set_experiment(unique("endpoints"))
    with mlflow.start_run():
        for step in range(4):
            mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
    assert total_over(servers, contract.METRIC_REQUESTS, **log_metric, status="200") - before == 4
    assert total_over(servers, contract.METRIC_LATENCY, "_count", **log_metric) - before_latency == 4


def test_upload_and_download_bytes_are_counted_under_the_template_not_the_file_name(tracking):
    servers = tracking.instances
    size = 3 * 2**20
    name = unique("weights") + ".bin"
    upload = {"endpoint": UPLOAD_TEMPLATE, "method": "PUT"}
    download = {"endpoint": UPLOAD_TEMPLATE, "method": "GET"}
    up_before = total_over(servers, contract.METRIC_REQUEST_BYTES, **upload)
    down_before = total_over(servers, contract.METRIC_RESPONSE_BYTES, **download)
    mlflow.set_experiment(unique("bytes"))
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, name)
        with open(path, "wb") as f:
            f.write(os.urandom(size))
        with mlflow.start_run() as run:
            mlflow.log_artifact(path)
        mlflow.artifacts.download_artifacts(run_id=run.info.run_id, artifact_path=name, dst_path=tmp + "/out")
    assert total_over(servers, contract.METRIC_REQUEST_BYTES, **upload) - up_before == size
    assert total_over(servers, contract.METRIC_RESPONSE_BYTES, **download) - down_before == size
    for inst in servers:  # bounded labels: no artifact's name is a label value
        text = get(inst.url + contract.METRICS_PATH).text
        assert name not in text, inst.name


def test_each_scrape_measures_the_whole_server_tree_memory(stack):
    for inst in stack.instances:
        samples = scrape(inst.url)
        memory = sample_sum(samples, contract.METRIC_MEMORY, "")
        processes = sample_sum(samples, contract.METRIC_PROCESSES, "")
        # The mlflow CLI, uvicorn's supervisor and a worker at least; a Python server is
        # never under 100 MiB, and this machine's whole memory is its upper bound.
        assert processes >= 3, (inst.name, processes)
        assert 100 * 2**20 < memory < os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"), (inst.name, memory)


@pytest.mark.parametrize("path", [contract.METRICS_PATH, contract.METRICS_PATH + "/", "//metrics", "/metrics?x=1"])
def test_the_proxy_refuses_metrics_with_or_without_credentials(stack, path):
    with requests.Session() as session:
        session.trust_env = False
        for auth in (None, stack.credentials):
            response = session.get(stack.tracking_uri + path, auth=auth, timeout=30, verify=False)
            assert response.status_code == 404, (path, auth is not None, response.status_code)
            assert REQUESTS not in response.text
