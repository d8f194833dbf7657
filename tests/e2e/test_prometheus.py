"""The real Prometheus scrapes the dev topology with the repo's scrape config and alert rules;
a database that stops shows up as the PostgresDown alert condition, an upload nginx refuses
(413) shows up in the proxy's series and not the servers', and the bucket's size is scraped.

The database stopped is one of its own (with its own postgres_exporter), next to the shared
topology's servers: stopping the shared database would break the other modules' tests."""

from __future__ import annotations

import http.client
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from components.specs import prometheus, proxy_metrics, seaweedfs
from components.specs.postgres_exporter import exporter_command, exporter_env
from components.specs.prometheus import ScrapeTargets, render_scrape_config
from components.versions import MLFLOW_IMAGE_DIR
from images.mlflow import server_contract as contract
from testkit.postgres import LocalPostgres
from testkit.processes import ManagedProcess, free_ports, wait_for_http

from .helpers import sample_sum, scrape

pytestmark = pytest.mark.e2e

HOST = "127.0.0.1"
EXPORTER = "prometheus-postgres-exporter"  # Debian's name for postgres_exporter


def binary(name: str) -> str:
    path = shutil.which(name)
    assert path, f"{name} is not installed (Debian: apt-get install {name})"
    return path


class Prometheus:
    def __init__(self, url: str) -> None:
        self.url = url

    def query(self, expr: str) -> list[dict]:
        with requests.Session() as session:
            session.trust_env = False
            response = session.get(f"{self.url}/api/v1/query", params={"query": expr}, timeout=10)
        response.raise_for_status()
        return response.json()["data"]["result"]

    def wait_for(self, expr: str, *, count: int = 1, timeout: float = 60.0) -> list[dict]:
        """Poll `expr` until it returns at least `count` series."""
        deadline = time.monotonic() + timeout
        while True:
            result = self.query(expr)
            if len(result) >= count:
                return result
            if time.monotonic() >= deadline:
                raise TimeoutError(f"{expr!r}: {len(result)} series after {timeout}s, wanted {count}")
            time.sleep(0.5)


def own_monitor_role(postgres: LocalPostgres, password: str) -> None:
    """The exporter's role in a database of the test's own, made by the boot step's functions."""
    import sqlalchemy
    from sqlalchemy.pool import NullPool

    sys.path.insert(0, str(MLFLOW_IMAGE_DIR))
    try:
        import mlflow_boot
    finally:
        sys.path.remove(str(MLFLOW_IMAGE_DIR))
    uri = f"postgresql+psycopg2://{postgres.superuser}:{postgres.password}@{postgres.host}:{postgres.port}/postgres"
    engine = sqlalchemy.create_engine(uri, poolclass=NullPool)
    try:
        mlflow_boot.ensure_server_role(engine, contract.MONITOR_DB_ROLE, password)
        mlflow_boot.grant_monitor_access(engine, contract.MONITOR_DB_ROLE)
    finally:
        engine.dispose()


@pytest.fixture(scope="module")
def monitored(stack) -> Iterator[tuple[Prometheus, LocalPostgres, str]]:
    """Prometheus scraping the shared topology's servers and database, and a database of its own,
    every 2 s (the exporter takes about 1 s to give up on a stopped database: within the scrape
    timeout). Each exporter runs as the stack's does: the monitor role (the shared database's made
    by the servers' boot step), its password in a file (components/specs/postgres_exporter.py)."""
    base = Path(tempfile.mkdtemp(prefix="mlflow-prometheus-"))
    processes: list[ManagedProcess] = []
    postgres = LocalPostgres(password="monitor-test-pw").start()
    try:
        own_password = "own-monitor-pw"
        own_monitor_role(postgres, own_password)
        shared_port, own_port, prometheus_port = free_ports(3, HOST)
        databases = {
            "shared": (stack.postgres.port, stack.settings.database.name, stack.db_monitor_password, shared_port),
            "own": (postgres.port, "postgres", own_password, own_port),
        }
        for name, (db_port, database, password, port) in databases.items():
            password_file = base / f"{name}-password"
            password_file.write_text(password)
            password_file.chmod(0o400)
            env = exporter_env(HOST, db_port, database, contract.MONITOR_DB_ROLE, password_file=str(password_file))
            processes.append(
                ManagedProcess(
                    [binary(EXPORTER), *exporter_command(HOST, port)], base, name=f"postgres-exporter-{name}", env=env
                )
            )
        targets = ScrapeTargets(
            mlflow=[f"{HOST}:{inst.port}" for inst in stack.instances],
            postgres_exporter=[f"{HOST}:{shared_port}", f"{HOST}:{own_port}"],
            proxy=[f"{HOST}:{stack.proxy_metrics_port}"],
            object_store=[f"{HOST}:{stack.s3.metrics_port}"],
        )
        config = base / "prometheus.yml"
        config.write_text(
            render_scrape_config(
                targets,
                rule_files=[str(prometheus.ALERT_RULES)],
                scrape_interval_seconds=2,
                evaluation_interval_seconds=1,
            )
        )
        processes.append(
            ManagedProcess(
                [
                    binary("prometheus"),
                    f"--config.file={config}",
                    f"--storage.tsdb.path={base / 'data'}",
                    f"--web.listen-address={HOST}:{prometheus_port}",
                ],
                base,
                name="prometheus",
            )
        )
        url = f"http://{HOST}:{prometheus_port}"
        wait_for_http(f"{url}/-/ready", timeout=30)
        yield Prometheus(url), postgres, f"{HOST}:{own_port}"
    finally:
        for process in reversed(processes):
            process.stop()
        postgres.stop()
        shutil.rmtree(base, ignore_errors=True)


def search_experiments(url: str, auth: tuple[str, str] | None = None) -> None:
    """A counted request with a body each way."""
    with requests.Session() as session:
        session.trust_env = False
        response = session.post(
            f"{url}/api/2.0/mlflow/experiments/search", json={"max_results": 1}, auth=auth, timeout=30
        )
    assert response.ok, response.text


def sample(prom: Prometheus, expr: str) -> float:
    """The value of a query that returns one series, 0 when it returns none."""
    result = prom.query(expr)
    assert len(result) <= 1, result
    return float(result[0]["value"][1]) if result else 0.0


def wait_until(prom: Prometheus, expr: str, done, *, timeout: float = 60.0) -> float:
    """Poll `expr` (one series) until `done(value)`; returns the value."""
    deadline = time.monotonic() + timeout
    while not done(value := sample(prom, expr)):
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{expr!r} is {value} after {timeout}s")
        time.sleep(0.5)
    return value


def test_prometheus_scrapes_every_server_and_the_database(monitored, stack):
    prom, _, _ = monitored
    for inst in stack.instances:  # so every family of the servers' exists
        search_experiments(inst.url)
    search_experiments(stack.tracking_uri, auth=stack.credentials)  # and the proxy's
    servers = prom.wait_for('up{job="mlflow"} == 1', count=len(stack.instances))
    assert {s["metric"]["instance"] for s in servers} == {f"{HOST}:{inst.port}" for inst in stack.instances}
    # Both databases, the shared one through the role its servers' boot step made.
    prom.wait_for("pg_up == 1", count=2)
    prom.wait_for(f'up{{job="{prometheus.PROXY_JOB}"}} == 1')
    prom.wait_for(f'up{{job="{prometheus.OBJECT_STORE_JOB}"}} == 1')
    # What the alert rules and the dashboard read is there, under the names they use. SeaweedFS
    # measures its buckets about once a minute, so the bucket size may take that long to appear.
    for metric in prometheus.SCRAPED_METRICS:
        prom.wait_for(metric, timeout=150)
    assert prom.query('ALERTS{alertname="PostgresDown"}') == []


def test_an_upload_nginx_refuses_is_counted_by_the_proxy_not_the_servers(monitored, stack):
    """A body over client_max_body_size: nginx answers 413 from the headers alone, before any
    server sees the request, so only the proxy's series can count it."""
    prom, _, _ = monitored
    proxy_413 = f'sum({proxy_metrics.METRIC_REQUESTS}{{status="413"}})'
    search_experiments(stack.tracking_uri, auth=stack.credentials)
    prom.wait_for(proxy_metrics.METRIC_REQUESTS)

    def servers_413() -> float:  # each server's own count, read from it now
        return sum(sample_sum(scrape(inst.url), contract.METRIC_REQUESTS, status="413") for inst in stack.instances)

    before, servers_before = sample(prom, proxy_413), servers_413()
    connection = http.client.HTTPConnection(HOST, stack.nginx_port, timeout=30)
    try:
        # Declared, not sent: nginx decides on Content-Length.
        connection.putrequest("PUT", "/api/2.0/mlflow-artifacts/artifacts/e2e/too-large.bin")
        connection.putheader("Content-Length", str(400 << 20))
        connection.endheaders()
        assert connection.getresponse().status == 413
    finally:
        connection.close()
    assert wait_until(prom, proxy_413, lambda value: value >= before + 1) == before + 1
    assert servers_413() == servers_before


def test_the_bucket_size_follows_what_is_stored(monitored, stack):
    prom, _, _ = monitored
    size = 1 << 20
    key = "e2e-prometheus/bucket-size.bin"
    expr = f'{seaweedfs.BUCKET_SIZE_METRIC}{{bucket="{stack.bucket}"}}'
    before = wait_until(prom, expr, lambda value: True)
    s3 = stack.s3_client()
    s3.put_object(Bucket=stack.bucket, Key=key, Body=os.urandom(size))  # random: not compressible
    try:
        wait_until(prom, expr, lambda value: value >= before + size, timeout=150)
    finally:
        s3.delete_object(Bucket=stack.bucket, Key=key)


def test_a_stopped_database_is_the_postgres_down_alert_condition(monitored):
    prom, postgres, own_exporter = monitored
    prom.wait_for("pg_up == 1", count=2)
    postgres.stop()
    # The exporter answers and says the database does not.
    down = prom.wait_for("pg_up == 0", timeout=30)
    assert [(d["metric"]["job"], d["metric"]["instance"]) for d in down] == [(prometheus.POSTGRES_JOB, own_exporter)]
    assert prom.query('up{job="postgres"} == 1')
    # The rule saw it: pending now, firing after its `for`.
    alert = prom.wait_for('ALERTS{alertname="PostgresDown"}', timeout=30)
    assert alert[0]["metric"]["alertstate"] in {"pending", "firing"}
