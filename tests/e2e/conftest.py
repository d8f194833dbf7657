"""Fixtures for the end-to-end tests: the dev topology as local processes.

One topology (postgres, S3, MLflow, nginx) serves the scenario, security and
restart modules: they log into their own experiments and only ever add data,
so sharing it is honest and saves ~15 s per module. Tests that need an empty
database (concurrent migration) start their own.

A failing test's report carries the tail of every process log; set
E2E_LOG_DIR=<dir> to keep the full logs (and nginx.conf) of every topology.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from testkit import topology
from testkit.server_venv import ServerVenvError, require_server_venv
from testkit.topology import DevTopology

IN_CI = os.environ.get("CI") == "true"
# The proxy limit for the shared topology: small, so a body over it is cheap to
# send, and still above the >= 200 MB artifact the scenario uploads.
MAX_UPLOAD = "300m"
# With observability on, as a monitored dev stack: the servers' boot step also creates the metrics
# exporter's role (test_database_roles, test_prometheus sign in as it).
SHARED_SETTINGS = {"proxy": {"maxUploadSize": MAX_UPLOAD}, "observability": {"enabled": True}}

_live: list[DevTopology] = []


def require_nginx() -> None:
    """Skip without nginx on a developer machine; in CI that is a failure."""
    # nginx_binary(): shutil.which("nginx"), else /usr/sbin/nginx (not on a user's PATH).
    if topology.nginx_binary() is None:
        message = "nginx is not installed (Debian: apt-get install nginx)"
        if IN_CI:
            pytest.fail(f"{message}; CI must not skip the nginx end-to-end tests")
        pytest.skip(message)


@pytest.fixture(scope="session")
def server_venv():
    try:
        return require_server_venv()
    except ServerVenvError as error:
        pytest.fail(str(error), pytrace=False)


def start_topology(**kwargs) -> DevTopology:
    topo = DevTopology(log_archive_dir=os.environ.get("E2E_LOG_DIR"), **kwargs)
    topo.start()
    _live.append(topo)
    return topo


def stop_topology(topo: DevTopology) -> None:
    try:
        topo.stop()
    finally:
        _live.remove(topo)


@pytest.fixture(scope="session")
def stack(server_venv):
    """The shared dev topology, behind nginx."""
    require_nginx()
    topo = start_topology(settings=SHARED_SETTINGS)
    yield topo
    stop_topology(topo)


@pytest.fixture(scope="session")
def basic_auth_stack(server_venv):
    """Two servers as prod runs them by default (`--app-name basic-auth`), no nginx: MLflow does
    auth. Shared by the basic-auth and audit-log modules, which only add data."""
    # The client talks to each server's own port (Host: 127.0.0.1:<port>), not through nginx.
    tracking = {"replicas": 2, "allowedHosts": ["127.0.0.1", "127.0.0.1:*"]}
    topo = start_topology(settings={"tracking": tracking}, nginx=False, app_name="basic-auth")
    yield topo
    stop_topology(topo)


@pytest.fixture
def tracking(stack):
    """`stack` with the in-process mlflow client pointed at it (through nginx)."""
    with stack.tracking_env():
        yield stack


def pytest_collection_modifyitems(items):
    # The restart test snapshots everything on the shared stack: run it after the other e2e
    # modules so the snapshot holds what they logged (the hook sees the whole session's items).
    here = Path(__file__).parent
    restart = [item for item in items if item.path == here / "test_restart.py"]
    others = [item for item in items if item.path != here / "test_restart.py"]
    e2e = [i for i, item in enumerate(others) if here in item.path.parents]
    at = e2e[-1] + 1 if e2e else len(others)
    items[:] = others[:at] + restart + others[at:]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed and _live:
        for topo in _live:
            report.sections.append((f"topology logs {topo.base_dir}", topo.log_report(40)))
