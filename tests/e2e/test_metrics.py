"""MLflow's Prometheus endpoint: every server answers it on its own address, its counters
follow what clients do, and the public proxy never serves it."""

from __future__ import annotations

import mlflow
import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from images.mlflow import server_contract as contract

from .helpers import unique

pytestmark = pytest.mark.e2e

REQUESTS = "mlflow_http_request"
DURATION = "mlflow_http_request_duration_seconds"


SEARCH = "/api/2.0/mlflow/experiments/search?max_results=1"


def get(url: str) -> requests.Response:
    # Straight to the server, as the scraper on the private network does: no proxy, no netrc.
    with requests.Session() as session:
        session.trust_env = False
        return session.get(url, timeout=30)


def scrape(url: str) -> dict[str, list]:
    """Samples by family name, as Prometheus reads them (a labelled family appears once a
    request has been counted in it)."""
    response = get(url + contract.METRICS_PATH)
    assert response.status_code == 200, response.text[:300]
    return {family.name: family.samples for family in text_string_to_metric_families(response.text)}


def posts_answered(samples: dict[str, list]) -> float:
    """POSTs the server answered 200, over all its workers (multiprocess files summed)."""
    return sum(
        s.value
        for s in samples.get(REQUESTS, [])
        if s.name == f"{REQUESTS}_total" and s.labels["method"] == "POST" and s.labels["status"] == "200"
    )


def duration_count(samples: dict[str, list]) -> float:
    return sum(s.value for s in samples.get(DURATION, []) if s.name == f"{DURATION}_count")


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


@pytest.mark.parametrize("path", [contract.METRICS_PATH, contract.METRICS_PATH + "/", "//metrics", "/metrics?x=1"])
def test_the_proxy_refuses_metrics_with_or_without_credentials(stack, path):
    with requests.Session() as session:
        session.trust_env = False
        for auth in (None, stack.credentials):
            response = session.get(stack.tracking_uri + path, auth=auth, timeout=30, verify=False)
            assert response.status_code == 404, (path, auth is not None, response.status_code)
            assert REQUESTS not in response.text
