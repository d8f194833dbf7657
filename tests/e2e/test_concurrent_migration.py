"""Three MLflow servers started at once against an empty database.

Each runs the boot module, which migrates under a PostgreSQL advisory lock:
exactly one creates the schema, the others wait and find it current, and all
three serve. Its own topology (no nginx needed): the database must be empty.
"""

from __future__ import annotations

import re

import pytest
import requests

from .conftest import start_topology, stop_topology

pytestmark = pytest.mark.e2e

REPLICAS = 3
# What nginx forwards ($host, no port): MLflow's --allowed-hosts matches it exactly.
HOST = {"Host": "127.0.0.1"}


@pytest.fixture(scope="module")
def replicas(server_venv):
    topo = start_topology(settings={"tracking": {"replicas": REPLICAS}}, nginx=False)
    yield topo
    stop_topology(topo)


def test_all_replicas_become_healthy(replicas):
    assert len(replicas.instances) == REPLICAS
    for inst in replicas.instances:
        assert inst.process.is_running()
        assert requests.get(f"{inst.url}/health", timeout=10).text == "OK"


def test_schema_migrated_exactly_once(replicas):
    assert sorted(replicas.schema_outcomes()) == ["created"] + ["current"] * (REPLICAS - 1)
    # Each server logged exactly one outcome: none skipped the boot step.
    for inst in replicas.instances:
        assert len(re.findall(r"database schema: \w+", inst.log_text())) == 1, inst.name
    # One row in alembic_version, at the head the server venv's MLflow expects.
    conn = replicas.postgres.connect(replicas.settings.database.name)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT version_num FROM alembic_version")
            rows = cur.fetchall()
            cur.execute("SELECT count(*) FROM experiments WHERE experiment_id = 0")
            (defaults,) = cur.fetchone()
    finally:
        conn.close()
    assert len(rows) == 1
    assert defaults == 1  # the Default experiment, created once


def test_no_error_in_any_log(replicas):
    assert replicas.error_lines() == {inst.name: [] for inst in replicas.instances}
    # Racing DDL would show up in the database's own log first.
    pg_errors = [
        line for line in replicas.postgres.process.log_text().splitlines() if re.search(r"\b(ERROR|FATAL|PANIC):", line)
    ]
    assert pg_errors == []


def test_every_replica_serves_the_same_data(replicas):
    """A write through one replica is read back through each of the others."""
    first, *others = replicas.instances
    created = requests.post(
        f"{first.url}/api/2.0/mlflow/experiments/create", json={"name": "shared"}, headers=HOST, timeout=30
    )
    assert created.status_code == 200, created.text
    experiment_id = created.json()["experiment_id"]
    for inst in others:
        got = requests.get(
            f"{inst.url}/api/2.0/mlflow/experiments/get",
            params={"experiment_id": experiment_id},
            headers=HOST,
            timeout=30,
        )
        assert got.status_code == 200, (inst.name, got.text)
        assert got.json()["experiment"]["name"] == "shared"
    # The bucket was created once, by whichever replica got there first, and is usable.
    assert replicas.s3_client().head_bucket(Bucket=replicas.bucket)["ResponseMetadata"]["HTTPStatusCode"] == 200
