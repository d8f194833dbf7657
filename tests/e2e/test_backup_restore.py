"""Backup -> destroy -> restore on the dev topology, read back through the real client.

A topology of its own (the data is destroyed): the scenario is logged through nginx
(experiments, runs with metric histories, small and multi-MB artifacts, a registered model with
two versions and an alias, a trace), `operations.backup.backup` takes the backup with the tools
the dev stack runs in its containers (pg_dump/pg_restore/psql, the bucket stream in the server's
environment), the database is dropped and the bucket emptied, `restore` brings both back, and
everything the client reads equals what it read before, artifacts by SHA-256.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path

import mlflow
import pytest
from mlflow import MlflowClient
from mlflow.entities import Metric, ViewType

from operations import backup as ops
from operations.targets import OperationError
from testkit.backup_target import TopologyTarget

from .conftest import SHARED_SETTINGS, require_nginx, start_topology, stop_topology
from .helpers import MODEL_CODE, sha256_file, unique, write_random

pytestmark = pytest.mark.e2e

BIG_ARTIFACT_BYTES = 12 * 1024 * 1024
AUTH_DB = "mlflow_auth"


@pytest.fixture(scope="module")
def topo(server_venv):
    require_nginx()
    # One worker: the restores restart the server twice, and a worker's start is what they wait for.
    started = start_topology(settings={**SHARED_SETTINGS, "tracking": {"workers": 1}})
    yield started
    stop_topology(started)


def log_scenario(work: Path) -> None:
    client = MlflowClient()
    experiment_id = mlflow.create_experiment(unique("backup"), tags={"team": "platform"})
    upload = work / "upload"
    (upload / "nested").mkdir(parents=True)
    (upload / "nested" / "notes.txt").write_text("hello backups\n" * 50)
    write_random(upload / "big.bin", BIG_ARTIFACT_BYTES)
    with mlflow.start_run(experiment_id=experiment_id, run_name="train") as run:
        mlflow.log_params({"lr": "0.01", "layers": "3"})
        mlflow.set_tags({"stage": "e2e", "unicode": "é✓"})
        for step in range(30):
            mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
        mlflow.log_artifacts(str(upload), artifact_path="files")
    now = int(time.time() * 1000)
    second = client.create_run(experiment_id, run_name="batch").info.run_id
    client.log_batch(second, metrics=[Metric("acc", step / 10, now + step, step) for step in range(10)])
    client.set_terminated(second)
    client.delete_run(second)  # a deleted run is history too

    code = work / "affine_model.py"
    code.write_text(MODEL_CODE)
    name = unique("backup-model")
    for _ in range(2):
        with mlflow.start_run(experiment_id=experiment_id, run_id=run.info.run_id):
            mlflow.pyfunc.log_model(
                name="model",
                python_model=str(code),
                registered_model_name=name,
                pip_requirements=[f"mlflow=={mlflow.__version__}"],
            )
    client.set_registered_model_alias(name, "champion", "2")
    client.set_registered_model_tag(name, "owner", "platform")

    mlflow.set_experiment(experiment_id=experiment_id)

    @mlflow.trace(name="predict")
    def predict(x: int) -> int:
        with mlflow.start_span(name="inner") as span:
            span.set_attribute("x", x)
        return x * 2

    assert predict(21) == 42
    mlflow.flush_trace_async_logging()  # the trace is exported in the background


def artifact_digests(client: MlflowClient, run_id: str, work: Path) -> dict[str, str]:
    with tempfile.TemporaryDirectory(dir=work) as into:
        local = Path(mlflow.artifacts.download_artifacts(run_id=run_id, dst_path=into))
        return {str(p.relative_to(local)): sha256_file(p) for p in sorted(local.rglob("*")) if p.is_file()}


def model_digests(uri: str, work: Path) -> dict[str, str]:
    with tempfile.TemporaryDirectory(dir=work) as into:
        local = Path(mlflow.artifacts.download_artifacts(artifact_uri=uri, dst_path=into))
        return {str(p.relative_to(local)): sha256_file(p) for p in sorted(local.rglob("*")) if p.is_file()}


def read_everything(work: Path) -> dict:
    """What a client reads back: every experiment, run, history, artifact, model, trace."""
    client = MlflowClient()
    state: dict = {"experiments": {}, "models": {}, "traces": {}}
    for exp in client.search_experiments(view_type=ViewType.ALL):
        runs = {}
        for run in client.search_runs([exp.experiment_id], run_view_type=ViewType.ALL):
            info = run.info
            runs[info.run_id] = {
                "info": (
                    info.run_name,
                    info.status,
                    info.lifecycle_stage,
                    info.start_time,
                    info.end_time,
                    info.artifact_uri,
                ),
                "params": run.data.params,
                "tags": run.data.tags,
                "metrics": run.data.metrics,
                "histories": {
                    key: [(m.step, m.timestamp, m.value) for m in client.get_metric_history(info.run_id, key)]
                    for key in run.data.metrics
                },
                "artifacts": artifact_digests(client, info.run_id, work) if info.lifecycle_stage == "active" else None,
            }
        traces = mlflow.search_traces(locations=[exp.experiment_id], return_type="list")
        for trace in traces:
            state["traces"][trace.info.trace_id] = {
                "state": str(trace.info.state),
                "spans": sorted(
                    (s.name, json.dumps(s.attributes, sort_keys=True, default=str)) for s in trace.data.spans
                ),
            }
        state["experiments"][exp.experiment_id] = {
            "name": exp.name,
            "stage": exp.lifecycle_stage,
            "tags": exp.tags,
            "location": exp.artifact_location,
            "runs": runs,
        }
    for model in client.search_registered_models():
        versions = {
            v.version: (v.source, v.run_id, v.status, v.tags, model_digests(f"models:/{model.name}/{v.version}", work))
            for v in client.search_model_versions(f"name = '{model.name}'")
        }
        state["models"][model.name] = {"tags": model.tags, "aliases": model.aliases, "versions": versions}
    return state


def add_auth_database(topo) -> None:
    """What `--app-name basic-auth` adds: a database of its own, next to MLflow's (its rows
    here are ours; the basic-auth e2e shows the app making it)."""
    topo.postgres.create_database(AUTH_DB, owner=topo.settings.database.username)
    conn = topo.postgres.connect(AUTH_DB)
    try:
        with conn, conn.cursor() as cur:
            cur.execute("CREATE TABLE alembic_version_auth (version_num varchar(32) PRIMARY KEY)")
            cur.execute("INSERT INTO alembic_version_auth VALUES ('f3f1e1c0ffee')")
            cur.execute("CREATE TABLE users (id serial PRIMARY KEY, username text UNIQUE)")
            cur.execute("INSERT INTO users (username) VALUES ('admin'), ('alice'), ('bob')")
    finally:
        conn.close()


def destroy(topo) -> None:
    """Drop both databases and empty the bucket, with the servers still running."""
    conn = topo.postgres.connect()
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            for name in (topo.settings.database.name, AUTH_DB):
                cur.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    finally:
        conn.close()
    s3 = topo.s3_client()
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=topo.bucket):
        for obj in page.get("Contents", []):
            s3.delete_object(Bucket=topo.bucket, Key=obj["Key"])
    assert s3.list_objects_v2(Bucket=topo.bucket).get("KeyCount") == 0


def test_backup_destroy_restore_reads_back_equal(topo):
    with tempfile.TemporaryDirectory(prefix="e2e-backup-") as tmp:
        work = Path(tmp)
        with topo.tracking_env():
            log_scenario(work)
            before = read_everything(work)
        add_auth_database(topo)
        target = TopologyTarget(topo)
        said: list[str] = []

        started = time.monotonic()
        folder = ops.backup(target, work / "backups", say=said.append)
        backup_seconds = time.monotonic() - started
        manifest = ops.load_manifest(folder)
        assert folder.name.startswith("mlflow-e2e-") and (folder.stat().st_mode & 0o777) == 0o700
        assert manifest["mlflow_version"] == mlflow.__version__
        assert manifest["schema_revision"]
        assert sorted(manifest["databases"]) == ["mlflow", AUTH_DB]
        rows = manifest["databases"]["mlflow"]["rows"]
        assert rows["runs"] == 2 and rows["model_versions"] == 2 and rows["registered_model_aliases"] == 1
        assert rows["metrics"] == 40 and rows["trace_info"] == 1
        assert manifest["databases"][AUTH_DB]["rows"]["users"] == 3
        keys = manifest["bucket"]["keys"]
        big = [k for k in keys if k.endswith("files/big.bin")]
        assert len(big) == 1 and keys[big[0]]["size"] == BIG_ARTIFACT_BYTES
        assert manifest["bucket"]["objects"] == len(keys) > 10
        assert ops.verify_files(folder, manifest) == []

        # A stack that holds data is refused, and left as it was.
        with pytest.raises(OperationError, match=r"holds data .*runs: 2.*--replace"):
            ops.restore(target, folder, say=said.append)

        destroy(topo)
        started = time.monotonic()
        ops.restore(target, folder, say=said.append)
        restore_seconds = time.monotonic() - started
        with topo.tracking_env():
            after = read_everything(work)
        assert after == before
        conn = topo.postgres.connect(AUTH_DB)
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT username FROM users ORDER BY id")
                assert [r[0] for r in cur.fetchall()] == ["admin", "alice", "bob"]
        finally:
            conn.close()
        # The servers came back on the restored schema without migrating it.
        assert topo.schema_outcomes()[-1] == "current"

        # --replace over data that drifted: the extra experiment, run and object are gone.
        with topo.tracking_env():
            drift = mlflow.create_experiment(unique("drift"))
            MlflowClient().create_run(drift)
        topo.s3_client().put_object(Bucket=topo.bucket, Key="stray/object.bin", Body=b"not in the backup")
        ops.restore(target, folder, replace=True, say=said.append)
        with topo.tracking_env():
            experiments = MlflowClient().search_experiments(view_type=ViewType.ALL)
            assert sorted(e.experiment_id for e in experiments) == sorted(before["experiments"])
        listed = topo.s3_client().list_objects_v2(Bucket=topo.bucket, Prefix="stray/")
        assert listed.get("KeyCount") == 0
        assert said[-1].startswith(f"restored {folder.name}: every row count")
        print(f"backup {backup_seconds:.1f} s, restore {restore_seconds:.1f} s, {manifest['bucket']['bytes']:,} bytes")


def test_a_damaged_backup_is_refused_before_anything_changes(topo):
    with tempfile.TemporaryDirectory(prefix="e2e-backup-") as tmp:
        folder = ops.backup(TopologyTarget(topo), Path(tmp), say=lambda _: None)
        dump = folder / "mlflow.dump"
        data = bytearray(dump.read_bytes())
        data[len(data) // 2] ^= 0xFF
        dump.write_bytes(bytes(data))
        pids = [inst.process.pid for inst in topo.instances if inst.process]
        with pytest.raises(OperationError, match=r"(?s)damaged.*mlflow\.dump"):
            ops.restore(TopologyTarget(topo), folder, replace=True, say=lambda _: None)
        assert [inst.process.pid for inst in topo.instances if inst.process] == pids  # not even stopped
