"""Prometheus series of our own beside MLflow's, served on the same /metrics.

MLflow's exporter (prometheus-flask-exporter) sees only the requests that reach its Flask app,
groups latency by MLflow's version rather than by endpoint, counts no bytes, and in multiprocess
mode exports no process series. MLflow 3.17 serves artifacts, OTLP traces, jobs and server-info
from FastAPI routes in front of Flask, so uploads and downloads are not in its series at all.
This ASGI middleware, outermost around MLflow's app, adds per endpoint (the route template, never
the raw path: bounded labels, no artifact names) request counts by status, latency histograms,
request and response body bytes, and at each scrape the memory of the whole server process tree.

Used only with --expose-prometheus: prometheus_client then writes every value to the multiprocess
directory, and MLflow's MultiProcessCollector adds these series to what it serves.
"""

from __future__ import annotations

import asyncio
import functools
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import server_contract as contract
from server_app import ASGIApp, Message, Receive, Scope, Send

# Not counted, like MLflow's own exporter: the probes and the scrape itself.
UNCOUNTED_PATHS = frozenset({contract.HEALTH_PATH, "/version", contract.METRICS_PATH})
UNMATCHED = "unmatched"
ROUTE_CACHE_SIZE = 4096


@dataclass(frozen=True)
class PlatformMetrics:
    """The series, created once per process (names in server_contract: the scrape config and the
    dashboard read the same names)."""

    requests: Any
    latency: Any
    request_bytes: Any
    response_bytes: Any
    memory: Any
    processes: Any

    @classmethod
    def create(cls, registry: Any = None) -> PlatformMetrics:
        from prometheus_client import REGISTRY, Counter, Gauge, Histogram

        registry = REGISTRY if registry is None else registry
        by_endpoint = ("endpoint", "method")
        return cls(
            requests=Counter(
                contract.METRIC_REQUESTS, "HTTP requests answered, by route template and status",
                (*by_endpoint, "status"), registry=registry,
            ),
            latency=Histogram(
                contract.METRIC_LATENCY, "Time from request to the end of the response, by route template",
                by_endpoint, buckets=contract.LATENCY_BUCKETS, registry=registry,
            ),
            request_bytes=Counter(
                contract.METRIC_REQUEST_BYTES, "Request body bytes received (uploads), by route template",
                by_endpoint, registry=registry,
            ),
            response_bytes=Counter(
                contract.METRIC_RESPONSE_BYTES, "Response body bytes sent (downloads), by route template",
                by_endpoint, registry=registry,
            ),
            # "mostrecent": the value the last scrape measured, whichever worker answered it.
            memory=Gauge(
                contract.METRIC_MEMORY, "Proportional set size of the server's whole process tree",
                registry=registry, multiprocess_mode="mostrecent",
            ),
            processes=Gauge(
                contract.METRIC_PROCESSES, "Processes in the server's tree (workers, job runners)",
                registry=registry, multiprocess_mode="mostrecent",
            ),
        )  # fmt: skip


def tree_memory(root_pid: int) -> tuple[int, int]:
    """(PSS bytes, process count) of `root_pid` and its descendants. PSS, not RSS: the workers
    share the parent's pages after fork, and RSS would count those once per worker."""
    import psutil

    try:
        root = psutil.Process(root_pid)
        tree = [root, *root.children(recursive=True)]
    except psutil.Error:
        return 0, 0
    total = count = 0
    for process in tree:
        try:
            total += process.memory_full_info().pss
            count += 1
        except psutil.Error:  # it ended while we looked
            continue
    return total, count


def server_root_pid(environ: dict[str, str] | os._Environ[str] = os.environ) -> int:
    """The boot step's pid (it execs `mlflow server`, whose tree is the server); without it, the
    parent of this worker (uvicorn's supervisor)."""
    value = environ.get(contract.SERVER_ROOT_PID, "")
    return int(value) if value.isdigit() else os.getppid()


class RouteNames:
    """The route template a request matched. FastAPI leaves the route it chose in the scope
    (`scope["route"]`, read once the app has answered); the rest went to the Flask app MLflow
    mounts at "/", whose URL map names it. Anything else is "unmatched"."""

    def __init__(self, flask_url_map: Any) -> None:
        self.adapter = flask_url_map.bind("localhost")
        self.flask_rule: Callable[[str, str], str] = functools.lru_cache(maxsize=ROUTE_CACHE_SIZE)(self._flask_rule)

    def __call__(self, scope: Scope) -> str:
        template = getattr(scope.get("route"), "path", None)
        if isinstance(template, str):
            return template
        return self.flask_rule(scope.get("method", ""), scope.get("path", ""))

    def _flask_rule(self, method: str, path: str) -> str:
        try:
            rule, _ = self.adapter.match(path, method=method, return_rule=True)
        except Exception:  # werkzeug's NotFound, MethodNotAllowed, RequestRedirect
            return UNMATCHED
        return str(rule.rule)


class RequestMetrics:
    """ASGI middleware: counts, latency and body bytes per route; the tree's memory at each scrape."""

    def __init__(
        self,
        app: ASGIApp,
        route_names: Callable[[Scope], str],
        metrics: PlatformMetrics,
        *,
        measure_memory: Callable[[], tuple[int, int]],
    ) -> None:
        self.app = app
        self.route_names = route_names
        self.metrics = metrics
        self.measure_memory = measure_memory

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or path in UNCOUNTED_PATHS:
            if scope["type"] == "http" and path == contract.METRICS_PATH:
                # Off the event loop: reading every process's smaps takes milliseconds.
                pss, count = await asyncio.to_thread(self.measure_memory)
                self.metrics.memory.set(pss)
                self.metrics.processes.set(count)
            await self.app(scope, receive, send)
            return
        method = scope.get("method", "")
        started = time.perf_counter()
        received = sent = 0
        status = 500  # until the app answers: an exception with no response is a 500

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
            return message

        async def counting_send(message: Message) -> None:
            nonlocal sent, status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            elif message["type"] == "http.response.body":
                sent += len(message.get("body", b""))
            await send(message)

        try:
            await self.app(scope, counting_receive, counting_send)
        finally:
            try:
                endpoint = self.route_names(scope)
            except Exception:  # naming must never fail a request
                endpoint = UNMATCHED
            labels = (endpoint, method)
            self.metrics.requests.labels(*labels, str(status)).inc()
            self.metrics.latency.labels(*labels).observe(time.perf_counter() - started)
            if received:
                self.metrics.request_bytes.labels(*labels).inc(received)
            if sent:
                self.metrics.response_bytes.labels(*labels).inc(sent)


def instrument(app: ASGIApp) -> ASGIApp:
    """`app` inside RequestMetrics when this server exports metrics, else as is: MLflow's own test
    (the variable its CLI sets from --expose-prometheus), so our series exist exactly when its
    exporter serves them."""
    from mlflow.server.constants import PROMETHEUS_EXPORTER_ENV_VAR

    if not os.environ.get(PROMETHEUS_EXPORTER_ENV_VAR):
        return app
    from mlflow.server import app as flask_app

    root = server_root_pid()
    return RequestMetrics(
        app,
        RouteNames(flask_app.url_map),
        PlatformMetrics.create(),
        measure_memory=lambda: tree_memory(root),
    )
