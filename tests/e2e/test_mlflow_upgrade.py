"""Upgrading MLflow through the documented path (docs/operations.md, "Upgrading MLflow"), on the
dev topology: data written by MLflow 3.0.0 (the oldest 3.x, its own venv from committed pins) with
its own client, every server stopped, `python -m mlflow_boot upgrade` run once from the pinned
version's venv, the pinned servers started: everything reads back equal through the pinned client.
And the refusals around it: a pinned server with MLFLOW_BOOT_SCHEMA=require-current (prod's) does
not start on the old schema, and a 3.0.0 server does not start on the upgraded one; neither
touches the schema.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

from testkit import old_server_venv
from testkit.old_server_venv import require_old_server_venv
from testkit.topology import TopologyError

from .conftest import start_topology, stop_topology

pytestmark = pytest.mark.e2e
# Built in the background from the session's start (tests/conftest.py).
PREBUILD_VENVS = [(old_server_venv.PINS, old_server_venv.NAME)]

SCENARIO = Path(__file__).with_name("upgrade_scenario.py")
# 3.0.0's `mlflow server` has neither --allowed-hosts nor --uvicorn-opts: the flags it has, same stores.
OLD_COMMAND = ("mlflow", "server", "--host", "{host}", "--port", "{port}", "--workers", "1", "--serve-artifacts",
               "--artifacts-destination", "{artifacts}", "--default-artifact-root", "mlflow-artifacts:/")  # fmt: skip
# A client talks to the servers directly (no nginx: their ports change when they are switched).
SETTINGS = {"tracking": {"allowedHosts": ["localhost", "127.0.0.1", "127.0.0.1:*"]}}


def scenario(topo, step: str) -> str:
    """upgrade_scenario.py `step` with the servers' own venv's client, against the first server."""
    env = {"PATH": f"{topo.venv}/bin:/usr/bin:/bin", "HOME": str(topo.base_dir), "LANG": "C.UTF-8",
           "MLFLOW_TRACKING_URI": topo.instances[0].url, "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "1"}  # fmt: skip
    result = subprocess.run([f"{topo.venv}/bin/python", str(SCENARIO), step], env=env, capture_output=True,
                            text=True, timeout=300, cwd=topo.base_dir)  # fmt: skip
    assert result.returncode == 0, result.stderr[-4000:]
    return result.stdout


def schema_revision(topo) -> str:
    conn = topo.postgres.connect(topo.settings.database.name)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT version_num FROM alembic_version")
            (row,) = cur.fetchall()
    finally:
        conn.close()
    return row[0]


def refused_start(topo) -> str:
    with pytest.raises(TopologyError, match="exited during startup") as refused:
        topo.start_mlflow()
    return str(refused.value)


@pytest.fixture(scope="module")
def upgrade(server_venv):
    old = require_old_server_venv()
    topo = start_topology(settings=SETTINGS, servers=1, nginx=False, venv=old, command=OLD_COMMAND)
    try:
        head = subprocess.run([f"{old}/bin/python", "-c", "from mlflow.store.db.utils import "
                               "_get_latest_schema_revision as head; print(head())"],
                              capture_output=True, text=True, check=True)  # fmt: skip
        facts: dict = {"old_head": head.stdout.strip(), "seconds": {}}
        started = time.monotonic()
        scenario(topo, "write")
        facts["before"] = json.loads(scenario(topo, "read"))
        facts["seconds"]["write+read (3.0.0)"] = time.monotonic() - started
        facts["old_revision"] = schema_revision(topo)
        topo.stop_mlflow()

        # Prod's servers with the new image: they refuse the old schema and leave it alone.
        topo.switch_servers(None, server_env={"MLFLOW_BOOT_SCHEMA": "require-current"})
        facts["require_current_refusal"] = refused_start(topo)
        facts["revision_after_refusal"] = schema_revision(topo)

        # The documented path: every server stopped, the new version's upgrade once, then start.
        topo.switch_servers(None)
        inst = topo.instances[0]
        started = time.monotonic()
        upgraded = subprocess.run([f"{topo.venv}/bin/python", "-m", "mlflow_boot", "upgrade"], env=inst.env,
                                  capture_output=True, text=True, timeout=300)  # fmt: skip
        facts["upgrade"] = (upgraded.returncode, upgraded.stderr)
        facts["seconds"]["upgrade"] = time.monotonic() - started
        facts["new_revision"] = schema_revision(topo)
        topo.switch_servers(None, server_env={"MLFLOW_BOOT_SCHEMA": "require-current"})
        topo.start_mlflow()
        facts["new_schema_outcomes"] = topo.schema_outcomes()
        facts["after"] = json.loads(scenario(topo, "read"))
        facts["new_errors"] = topo.error_lines()
        topo.stop_mlflow()

        # An old server on the upgraded schema: refused, schema untouched.
        topo.switch_servers(old, OLD_COMMAND)
        facts["old_on_new_refusal"] = refused_start(topo)
        facts["revision_after_old_refusal"] = schema_revision(topo)
        print("upgrade e2e timings:", {k: round(v, 1) for k, v in facts["seconds"].items()})
        yield facts
    finally:
        stop_topology(topo)


def test_the_old_version_wrote_the_whole_scenario(upgrade):
    before = upgrade["before"]
    # 3.0.0's alembic env.py disables other loggers (fileConfig), so its boot logs no outcome line:
    # the schema it created is its own head.
    assert upgrade["old_revision"] == upgrade["old_head"]
    assert [r["name"] for r in before["runs"]] == ["run-0", "run-1"]
    assert all(len(r["loss"]) == 20 and len(r["artifacts"]) == 2 for r in before["runs"])
    assert before["model"]["champion"] == "1" and before["model"]["aliases"] == {"champion": "1"}


def test_the_new_image_refuses_the_old_schema_under_require_current_and_leaves_it(upgrade):
    message = upgrade["require_current_refusal"]
    assert "refusing to start (MLFLOW_BOOT_SCHEMA=require-current" in message
    assert upgrade["old_revision"] in message
    assert upgrade["revision_after_refusal"] == upgrade["old_revision"]


def test_the_upgrade_command_upgrades_once_and_the_new_servers_find_it_current(upgrade):
    code, log = upgrade["upgrade"]
    assert code == 0, log
    assert "schema upgrade: upgraded" in log
    assert upgrade["new_revision"] != upgrade["old_revision"]
    assert upgrade["new_schema_outcomes"] == ["current"]
    assert upgrade["new_errors"] == {"mlflow-0": []}


def test_everything_reads_back_equal_through_the_new_client(upgrade):
    """Experiments, runs, params, tags, metric histories, artifacts by SHA-256, the registered
    model, its version and alias: what 3.0.0 read is what the pinned version reads."""
    assert upgrade["after"] == upgrade["before"]


def test_an_old_server_refuses_the_upgraded_schema_and_leaves_it(upgrade):
    message = upgrade["old_on_new_refusal"]
    assert f"schema is at {upgrade['new_revision']}, which this image's MLflow does not know" in message
    assert upgrade["revision_after_old_refusal"] == upgrade["new_revision"]
