"""Traces over OpenTelemetry: an application's OTLP/HTTP exporter, configured the way the README
tells a user to (OTEL_EXPORTER_OTLP_TRACES_ENDPOINT and _HEADERS), sends spans through nginx with
the stack's credentials; the MLflow client reads them back whole. Runs on the shared topology.
"""

from __future__ import annotations

import base64
import http.client
from urllib.parse import quote

import mlflow
import pytest
import requests
from mlflow.tracking import MlflowClient
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Span, SpanKind

from components.specs import otlp
from testkit.topology import HOST

from .helpers import unique, wait_for

pytestmark = pytest.mark.e2e

# (name, parent name, attributes): a small agent run, three levels deep.
SPANS = (
    ("agent", None, {"app.request": "what is 2+2?", "app.user_tier": "free"}),
    ("retrieve", "agent", {"retrieval.k": 3, "retrieval.hit": True}),
    ("llm", "agent", {"llm.model": "tiny", "llm.tokens": 17, "llm.temperature": 0.5}),
    ("tool", "llm", {"tool.name": "calculator", "tool.output": "4"}),
)


def exporter_env(stack, experiment_id: str) -> dict[str, str]:
    """What the README's "Sending traces" section has an application export."""
    user, password = stack.credentials
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    headers = {"Authorization": f"Basic {token}", otlp.EXPERIMENT_ID_HEADER: experiment_id}
    return {
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": f"{stack.tracking_uri}{otlp.TRACES_PATH}",
        # The OTel spec's format: comma-separated key=value, values percent-encoded.
        "OTEL_EXPORTER_OTLP_TRACES_HEADERS": ",".join(f"{k}={quote(v)}" for k, v in headers.items()),
    }


def send_trace(monkeypatch, env: dict[str, str]) -> str:
    """Export SPANS as one trace with the OpenTelemetry SDK; its trace id in hex."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    exporter = OTLPSpanExporter()  # reads the endpoint and headers from the environment
    for name in env:
        monkeypatch.delenv(name)
    # A provider of our own, not the global one (the mlflow client has its own tracing setup).
    provider = TracerProvider(resource=Resource.create({"service.name": "otlp-e2e"}))
    # As applications run it: spans queue up and go out as one batch (here at shutdown).
    provider.add_span_processor(BatchSpanProcessor(exporter))
    tracer = provider.get_tracer("tests.e2e.otlp")

    def run(name: str, attributes: dict) -> Span:
        with tracer.start_as_current_span(name, kind=SpanKind.INTERNAL, attributes=attributes) as span:
            for child, parent, child_attributes in SPANS:
                if parent == name:
                    run(child, child_attributes)
        return span

    try:
        root = run(SPANS[0][0], SPANS[0][2])
    finally:
        provider.shutdown()  # flushes: every span is exported before this returns
    return format(root.get_span_context().trace_id, "032x")


def test_an_otlp_exporter_s_trace_arrives_through_nginx_with_every_span(tracking, monkeypatch):
    experiment_id = mlflow.create_experiment(unique("otlp"))
    logged = len(tracking.access_log())
    trace_hex = send_trace(monkeypatch, exporter_env(tracking, experiment_id))

    traces = MlflowClient().search_traces(locations=[experiment_id])
    assert [t.info.trace_id for t in traces] == [f"tr-{trace_hex}"]
    trace = MlflowClient().get_trace(f"tr-{trace_hex}")
    spans = {span.name: span for span in trace.data.spans}
    assert sorted(spans) == sorted(name for name, _, _ in SPANS)
    for name, parent, attributes in SPANS:
        span = spans[name]
        assert span.parent_id == (spans[parent].span_id if parent else None), name
        for key, value in attributes.items():
            assert span.get_attribute(key) == value, (name, key)
    assert trace.info.experiment_id == experiment_id
    # One export request carried the whole batch, and nginx passed it to MLflow, which took it.
    exports = [e for e in tracking.access_log()[logged:] if e["path"] == otlp.TRACES_PATH]
    assert [(e["user"], e["status"]) for e in exports] == [(tracking.username, 200)]


def test_otlp_without_credentials_is_refused_by_nginx(tracking):
    experiment_id = mlflow.create_experiment(unique("otlp-anonymous"))
    url = f"{tracking.tracking_uri}{otlp.TRACES_PATH}"
    headers = {"Content-Type": "application/json", otlp.EXPERIMENT_ID_HEADER: experiment_id}
    response = requests.post(url, data=b'{"resourceSpans": []}', headers=headers, timeout=10)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Basic")
    assert MlflowClient().search_traces(locations=[experiment_id]) == []


def test_a_batch_over_the_otlp_limit_is_refused_before_mlflow(tracking):
    # nginx answers 413 from the Content-Length alone, before a byte of the body is sent.
    connection = http.client.HTTPConnection(HOST, tracking.nginx_port, timeout=30)
    try:
        connection.putrequest("POST", otlp.TRACES_PATH)
        user, password = tracking.credentials
        connection.putheader("Authorization", "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode())
        connection.putheader("Content-Type", "application/x-protobuf")
        connection.putheader(otlp.EXPERIMENT_ID_HEADER, "0")
        connection.putheader("Content-Length", str(otlp.MAX_BATCH_BYTES + 1))
        connection.endheaders()
        assert connection.getresponse().status == 413
    finally:
        connection.close()
    refused = wait_for(
        lambda: [e for e in tracking.access_log() if e["path"] == otlp.TRACES_PATH and e["status"] == 413]
    )
    assert refused and all(e["urt"] is None for e in refused)  # MLflow never saw it
