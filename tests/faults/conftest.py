"""One topology for the fault tests of test_faults.py: PostgreSQL, S3, two MLflow servers behind nginx.

Its own, not the e2e suite's shared stack: these tests kill that topology's processes. Each test
restores what it broke before it returns, so the next one starts from a healthy topology.
Set FAULTS_RESULTS=<file> to append each fault's figures as a JSON line (bench/FAULTS.md).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator

import mlflow
import pytest

from testkit.server_venv import ServerVenvError, require_server_venv
from testkit.topology import DevTopology
from tests.e2e.conftest import require_nginx, start_topology, stop_topology

# A body limit above the 200 MB artifact of the S3 fault; one worker per server: the faults are
# about processes, and a server restarts in half the time.
SETTINGS = {"proxy": {"maxUploadSize": "300m"}, "tracking": {"replicas": 2, "workers": 1}}


# Module scope: only test_faults.py uses it, and a session one would keep four servers running
# (and the in-process client pointed at them) through every later directory of the suite.
@pytest.fixture(scope="module")
def faulty() -> Iterator[DevTopology]:
    require_nginx()
    try:
        require_server_venv()
    except ServerVenvError as error:
        pytest.fail(str(error), pytrace=False)
    topo = start_topology(settings=SETTINGS, servers=2)
    try:
        with topo.tracking_env():
            yield topo
    finally:
        stop_topology(topo)


@pytest.fixture
def experiment_id(faulty, request) -> str:
    return mlflow.create_experiment(f"faults-{request.node.name}-{os.getpid()}")


@pytest.fixture
def record_fault():
    """record_fault(row): the figures of one fault, for bench/FAULTS.md."""
    rows: list[dict] = []
    yield rows.append
    target = os.environ.get("FAULTS_RESULTS")
    if target:
        load = os.getloadavg()
        with open(target, "a") as out:
            for row in rows:
                out.write(json.dumps({**row, "load_average": [round(x, 2) for x in load]}) + "\n")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    topo = item.funcargs.get("faulty") if hasattr(item, "funcargs") else None
    if report.failed and topo is not None:
        report.sections.append((f"topology logs {topo.base_dir}", topo.log_report(40)))
