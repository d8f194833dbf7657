"""Our Prometheus series (images/mlflow/request_metrics.py): per route template, status, latency and
body bytes, the probes and the scrape left out, the tree's memory measured at each scrape."""

from __future__ import annotations

import os
import sys
from types import SimpleNamespace

import pytest
from mlflow.server import app as flask_app
from mlflow.server.constants import PROMETHEUS_EXPORTER_ENV_VAR
from prometheus_client import CollectorRegistry

from components.versions import MLFLOW_IMAGE_DIR
from tests.unit.asgi_harness import Recorder, call, scope

sys.path.insert(0, str(MLFLOW_IMAGE_DIR))
import request_metrics  # noqa: E402
import server_contract as contract  # noqa: E402

LOG_METRIC = "/api/2.0/mlflow/runs/log-metric"
ARTIFACT_ROUTE = "/api/2.0/mlflow-artifacts/artifacts/{artifact_path:path}"


class Answering(Recorder):
    """MLflow's app as FastAPI leaves it: the route it chose in the scope, a body of `size` bytes."""

    def __init__(self, route: str | None = None, size: int = 2, **kwargs) -> None:
        super().__init__(**kwargs)
        self.route, self.size = route, size

    async def __call__(self, scope, receive, send):
        if self.route is not None:
            scope["route"] = SimpleNamespace(path=self.route)
        while (await receive()).get("more_body"):
            pass
        await send({"type": "http.response.start", "status": self.status, "headers": []})
        await send({"type": "http.response.body", "body": b"x" * self.size, "more_body": True})
        await send({"type": "http.response.body", "body": b""})


@pytest.fixture
def metered():
    registry = CollectorRegistry()
    names = request_metrics.RouteNames(flask_app.url_map)

    def build(app, measure=lambda: (123 * 2**20, 4)):
        return request_metrics.RequestMetrics(
            app, names, request_metrics.PlatformMetrics.create(registry), measure_memory=measure
        )

    def value(name: str, **labels: str) -> float:
        return registry.get_sample_value(name, labels) or 0.0

    return SimpleNamespace(build=build, value=value)


def test_a_flask_route_is_counted_by_its_rule_with_status_latency_and_bytes(metered):
    app = metered.build(Recorder(status=200))
    call(app, scope("POST", LOG_METRIC), body=b'{"key": "loss"}', chunk=4)
    labels = {"endpoint": LOG_METRIC, "method": "POST"}
    assert metered.value(contract.METRIC_REQUESTS + "_total", **labels, status="200") == 1
    assert metered.value(contract.METRIC_LATENCY + "_count", **labels) == 1
    assert metered.value(contract.METRIC_REQUEST_BYTES + "_total", **labels) == len(b'{"key": "loss"}')
    assert metered.value(contract.METRIC_RESPONSE_BYTES + "_total", **labels) == len(b"{}")


def test_a_path_with_ids_is_named_by_its_template_not_its_values():
    names = request_metrics.RouteNames(flask_app.url_map)
    trace = names({"method": "PATCH", "path": "/api/3.0/mlflow/traces/tr-0123456789abcdef/tags"})
    assert trace == "/api/3.0/mlflow/traces/<trace_id>/tags"
    assert names({"method": "GET", "path": "/no/such/route/tr-0123"}) == request_metrics.UNMATCHED
    assert names({"method": "DELETE", "path": LOG_METRIC}) == request_metrics.UNMATCHED  # 405 at Flask


def test_a_fastapi_route_is_named_by_the_route_it_left_in_the_scope(metered):
    app = metered.build(Answering(route=ARTIFACT_ROUTE, size=3 * 2**20))
    call(app, scope("GET", "/api/2.0/mlflow-artifacts/artifacts/1/abc/artifacts/model.pkl"))
    labels = {"endpoint": ARTIFACT_ROUTE, "method": "GET"}
    assert metered.value(contract.METRIC_RESPONSE_BYTES + "_total", **labels) == 3 * 2**20
    assert metered.value(contract.METRIC_REQUESTS + "_total", **labels, status="200") == 1


def test_an_app_exception_is_counted_as_its_answer_and_still_raised(metered):
    app = metered.build(Recorder(status=500, raises=RuntimeError("boom")))
    with pytest.raises(RuntimeError):
        call(app, scope("POST", LOG_METRIC))
    assert metered.value(contract.METRIC_REQUESTS + "_total", endpoint=LOG_METRIC, method="POST", status="500") == 1


def test_an_exception_before_any_answer_is_a_500(metered):
    async def broken(scope, receive, send):
        raise OSError("gone")

    with pytest.raises(OSError):
        call(metered.build(broken), scope("POST", LOG_METRIC))
    assert metered.value(contract.METRIC_REQUESTS + "_total", endpoint=LOG_METRIC, method="POST", status="500") == 1


def test_a_naming_failure_never_fails_the_request(metered):
    app = metered.build(Recorder(status=200))
    app.route_names = lambda scope: 1 / 0
    sent = call(app, scope("GET", "/api/2.0/mlflow/experiments/search"))
    assert sent[0]["status"] == 200
    endpoint = request_metrics.UNMATCHED
    assert metered.value(contract.METRIC_REQUESTS + "_total", endpoint=endpoint, method="GET", status="200") == 1


@pytest.mark.parametrize("path", [contract.HEALTH_PATH, "/version", contract.METRICS_PATH])
def test_probes_and_the_scrape_are_not_counted(metered, path):
    inner = Recorder(status=200)
    app = metered.build(inner)
    call(app, scope("GET", path))
    assert inner.calls == 1
    assert metered.value(contract.METRIC_REQUESTS + "_total", endpoint=path, method="GET", status="200") == 0
    assert metered.value(contract.METRIC_REQUESTS + "_total", endpoint="unmatched", method="GET", status="200") == 0


def test_each_scrape_measures_the_tree_before_the_exporter_answers(metered):
    readings = iter([(200 * 2**20, 5), (300 * 2**20, 6)])
    app = metered.build(Recorder(status=200), measure=lambda: next(readings))
    call(app, scope("GET", contract.METRICS_PATH))
    assert metered.value(contract.METRIC_MEMORY) == 200 * 2**20
    assert metered.value(contract.METRIC_PROCESSES) == 5
    call(app, scope("GET", contract.METRICS_PATH))
    assert metered.value(contract.METRIC_MEMORY) == 300 * 2**20


def test_tree_memory_sums_this_process_and_its_children():
    pss, count = request_metrics.tree_memory(os.getpid())
    assert count >= 1
    assert 10 * 2**20 < pss < os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    assert request_metrics.tree_memory(2**22 + 1) == (0, 0)  # above Linux's pid_max: no such process


def test_the_root_is_the_boot_steps_pid_or_else_the_parent():
    assert request_metrics.server_root_pid({contract.SERVER_ROOT_PID: "4242"}) == 4242
    assert request_metrics.server_root_pid({}) == os.getppid()


def test_without_the_exporter_the_app_is_not_wrapped(monkeypatch):
    monkeypatch.delenv(PROMETHEUS_EXPORTER_ENV_VAR, raising=False)
    inner = Recorder()
    assert request_metrics.instrument(inner) is inner
