"""Garbage collection on the dev topology: what users deleted goes, rows and objects; nothing else.

gc runs as the dev stack runs it (`make gc`): `gc_command()` with the server's own environment
(its NAME_FILE secrets, database settings, S3 endpoint and keys) plus `gc_env()`, in the image's
venv, with a zero threshold. Its own topology: gc deletes data, which the shared `stack` must keep.

What MLflow's `mlflow gc` alone would do here (mlflow/cli/__init__.py, _gc_tracking_resources):
resolve each `mlflow-artifacts:/` URI against the tracking URI, which must then be an HTTP server,
and hard-delete an experiment's rows without touching its logged models' or traces' objects
(`logged_models.experiment_id` is ON DELETE CASCADE). `test_gc_removes_..._and_nothing_else`
fails on either: it compares the whole bucket, key by key, before and after;
`test_plain_mlflow_gc_...` shows both on MLflow's own command.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
import time
from pathlib import Path

import mlflow
import pytest
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag

from components.specs.gc import gc_command, gc_env
from testkit.topology import DevTopology

from .conftest import start_topology, stop_topology
from .helpers import write_random

pytestmark = pytest.mark.e2e

# Every column naming a run, in any of MLflow's tables, is searched for the deleted run's id.
RUN_COLUMNS = ("run_uuid", "run_id", "source_run_id")


@pytest.fixture(scope="module")
def topo(server_venv):
    # Reached directly (no proxy in front, which would forward the bare host name).
    topology = start_topology(settings={"tracking": {"allowedHosts": ["127.0.0.1", "127.0.0.1:*"]}}, nginx=False)
    yield topology
    stop_topology(topology)


def bucket_objects(topo: DevTopology) -> dict[str, str]:
    """key -> SHA-256 of its bytes, for every object of the bucket."""
    client = topo.s3_client()
    found = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=topo.bucket):
        for item in page.get("Contents", []):
            body = client.get_object(Bucket=topo.bucket, Key=item["Key"])["Body"].read()
            found[item["Key"]] = hashlib.sha256(body).hexdigest()
    return found


def rows_naming(topo: DevTopology, value: str) -> dict[str, int]:
    """table -> number of rows in which a run-id column, an experiment id or a model id equals `value`."""
    conn = topo.postgres.connect(topo.settings.database.name)
    try:
        with conn.cursor() as cursor:
            cursor.execute(
                "SELECT table_name, column_name FROM information_schema.columns "
                "WHERE table_schema = 'public' AND column_name = ANY(%s)",
                (list(RUN_COLUMNS) + ["experiment_id", "model_id"],),
            )
            columns = cursor.fetchall()
            counts = {}
            for table, column in columns:
                cursor.execute(f'SELECT count(*) FROM "{table}" WHERE "{column}"::text = %s', (value,))
                count = cursor.fetchone()[0]
                if count:
                    counts[f"{table}.{column}"] = count
            return counts
    finally:
        conn.close()


def run_gc(topo: DevTopology, older_than: str | None) -> subprocess.CompletedProcess:
    server = topo.instances[0]
    env = {**server.env, **gc_env(topo.artifact_endpoint())}
    command = list(gc_command(older_than))
    # The image's `python` is the venv's (first on the server's PATH).
    return subprocess.run(command, env=env, cwd=server.spec.scratch_dir, capture_output=True, text=True, timeout=300)


def log_run(client: MlflowClient, experiment_id: str, tmp: Path, name: str) -> tuple[str, dict[str, str]]:
    """A run with params, tags, a metric history and two artifacts (one in a folder); its id and
    artifact SHA-256s by path."""
    run_id = client.create_run(experiment_id, run_name=name).info.run_id
    now = int(time.time() * 1000)
    client.log_batch(
        run_id,
        metrics=[Metric("loss", 1.0 / (step + 1), now + step, step) for step in range(5)],
        params=[Param("lr", "0.01")],
        tags=[RunTag("owner", name)],
    )
    folder = tmp / name
    (folder / "plots").mkdir(parents=True)
    digests = {
        "weights.bin": write_random(folder / "weights.bin", 64 * 1024),
        "plots/curve.bin": write_random(folder / "plots" / "curve.bin", 4 * 1024),
    }
    client.log_artifacts(run_id, str(folder))
    client.set_terminated(run_id)
    return run_id, digests


def logged_model(client: MlflowClient, experiment_id: str, tmp: Path, name: str, run_id: str | None = None) -> str:
    model = client.create_logged_model(experiment_id, name=name, source_run_id=run_id)
    folder = tmp / f"model-{name}"
    folder.mkdir()
    write_random(folder / "model.bin", 16 * 1024)
    client.log_model_artifacts(model.model_id, str(folder))
    return model.model_id


def read_back(client: MlflowClient, run_id: str, tmp: Path) -> dict:
    """What a user reads of a run: its data, metric history and artifacts by SHA-256."""
    run = client.get_run(run_id)
    target = Path(client.download_artifacts(run_id, "", str(tmp / f"read-{run_id}-{time.monotonic_ns()}")))
    artifacts = {
        str(path.relative_to(target)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(target.rglob("*"))
        if path.is_file()
    }
    return {
        "params": run.data.params,
        "tags": {k: v for k, v in run.data.tags.items() if not k.startswith("mlflow.")},
        "loss": [(m.step, m.value) for m in client.get_metric_history(run_id, "loss")],
        "artifacts": artifacts,
        "stage": run.info.lifecycle_stage,
    }


def prefix_of(artifact_uri: str) -> str:
    """`mlflow-artifacts:/1/abc/artifacts` -> `1/abc/artifacts/` (the key prefix in the bucket)."""
    return re.sub(r"^mlflow-artifacts:/+", "", artifact_uri).rstrip("/") + "/"


def test_gc_removes_deleted_runs_models_and_experiments_rows_and_objects_and_nothing_else(topo, tmp_path):
    with topo.tracking_env():
        client = MlflowClient()
        kept_exp = client.create_experiment("gc-kept")
        kept_run, kept_digests = log_run(client, kept_exp, tmp_path, "kept")
        doomed_run, _ = log_run(client, kept_exp, tmp_path, "doomed")
        # A model of the doomed run stays alive: deleting a run does not delete its models.
        live_model = logged_model(client, kept_exp, tmp_path, "of-doomed-run", doomed_run)
        doomed_model = logged_model(client, kept_exp, tmp_path, "doomed-model", kept_run)
        with mlflow.start_span("kept-trace") as span:
            span.set_inputs({"q": 1})
        kept_trace = span.trace_id

        gone_exp = client.create_experiment("gc-gone")
        gone_run, _ = log_run(client, gone_exp, tmp_path, "in-gone-experiment")
        gone_exp_model = logged_model(client, gone_exp, tmp_path, "in-gone-experiment", gone_run)
        mlflow.set_experiment(experiment_id=gone_exp)
        with mlflow.start_span("gone-trace") as span:
            span.set_inputs({"q": 2})
        mlflow.set_experiment(experiment_id=kept_exp)

        doomed_prefix = prefix_of(client.get_run(doomed_run).info.artifact_uri)
        doomed_model_prefix = prefix_of(client.get_logged_model(doomed_model).artifact_location)
        gone_prefix = prefix_of(client.get_experiment(gone_exp).artifact_location)
        assert client.get_logged_model(gone_exp_model).artifact_location.startswith(
            client.get_experiment(gone_exp).artifact_location
        )

        client.delete_run(doomed_run)
        client.delete_logged_model(doomed_model)
        client.delete_experiment(gone_exp)

        before = bucket_objects(topo)
        kept_before = read_back(client, kept_run, tmp_path)
        live_model_before = client.get_logged_model(live_model).to_proto()
        assert kept_before["artifacts"] == kept_digests
        expected_gone = {k for k in before if k.startswith((doomed_prefix, doomed_model_prefix, gone_prefix))}
        # The gone experiment's run and its logged model both have objects; so do the others.
        assert any(k.startswith(f"{gone_prefix}models/") for k in expected_gone), sorted(before)
        assert any(k.startswith(doomed_prefix) for k in expected_gone)
        assert any(k.startswith(doomed_model_prefix) for k in expected_gone)

        done = run_gc(topo, "0s")
        assert done.returncode == 0, done.stdout + done.stderr
        assert f"Run with ID {doomed_run} has been permanently deleted." in done.stdout
        assert f"Logged model with ID {doomed_model} has been permanently deleted." in done.stdout
        assert f"Experiment with ID {gone_exp} has been permanently deleted." in done.stdout
        # MLflow left its logged model's and trace's objects; mlflow_gc emptied the location.
        assert f"experiment {gone_exp}: emptied its artifact location" in done.stderr

        after = bucket_objects(topo)
        # Exactly the deleted things' objects are gone; every other object is there, byte for byte.
        assert set(before) - set(after) == expected_gone, sorted(set(after) & expected_gone)
        assert after == {k: v for k, v in before.items() if k not in expected_gone}

        # Their rows are gone, in every table that names them.
        # ...but one: the live model of the deleted run still names it as its source. MLflow's
        # model declares that key ON DELETE SET NULL (dbmodels/models.py, SqlLoggedModel), yet
        # gc's bulk DELETE of the run leaves it: the model is live, its lineage is kept as a string.
        assert rows_naming(topo, doomed_run) == {"logged_models.source_run_id": 1}
        assert client.get_logged_model(live_model).source_run_id == doomed_run
        assert rows_naming(topo, doomed_model) == {}
        assert rows_naming(topo, gone_run) == {}
        assert rows_naming(topo, gone_exp_model) == {}
        assert rows_naming(topo, gone_exp) == {}

        # Everything else reads back equal through the client.
        assert read_back(client, kept_run, tmp_path) == kept_before
        assert client.get_logged_model(live_model).to_proto() == live_model_before
        assert client.get_trace(kept_trace).data.spans[0].inputs == {"q": 1}
        assert client.get_experiment(kept_exp).lifecycle_stage == "active"
        with pytest.raises(mlflow.exceptions.MlflowException):
            client.get_run(doomed_run)

        # A second gc finds nothing to do and changes nothing.
        again = run_gc(topo, "0s")
        assert again.returncode == 0, again.stdout + again.stderr
        assert "permanently deleted" not in again.stdout
        assert bucket_objects(topo) == after


def test_gc_keeps_what_was_deleted_more_recently_than_the_threshold(topo, tmp_path):
    with topo.tracking_env():
        client = MlflowClient()
        experiment = client.create_experiment("gc-threshold")
        run_id, _ = log_run(client, experiment, tmp_path, "recent")
        client.delete_run(run_id)
        prefix = prefix_of(client.get_run(run_id).info.artifact_uri)
        before = bucket_objects(topo)
        assert any(k.startswith(prefix) for k in before)

        done = run_gc(topo, "1d")
        assert done.returncode == 0, done.stdout + done.stderr
        assert bucket_objects(topo) == before
        assert client.get_run(run_id).info.lifecycle_stage == "deleted"


def test_plain_mlflow_gc_deletes_nothing_against_the_database_and_leaves_a_gone_experiments_models(topo, tmp_path):
    """The control: why gc_command() runs mlflow_gc rather than `mlflow gc` itself."""
    with topo.tracking_env():
        client = MlflowClient()
        experiment = client.create_experiment("gc-plain")
        run_id, _ = log_run(client, experiment, tmp_path, "plain")
        logged_model(client, experiment, tmp_path, "plain-model", run_id)
        prefix = prefix_of(client.get_experiment(experiment).artifact_location)
        client.delete_experiment(experiment)
    before = {k for k in bucket_objects(topo) if k.startswith(prefix)}
    assert any(k.startswith(f"{prefix}models/") for k in before) and any(
        k.startswith(f"{prefix}{run_id}/") for k in before
    )

    server = topo.instances[0]
    endpoint = topo.database_endpoint()
    database_uri = (
        f"postgresql+psycopg2://{endpoint.user}:{topo.db_password}@{endpoint.host}:{endpoint.port}/{endpoint.name}"
    )
    base = {**server.env, "MLFLOW_BACKEND_STORE_URI": database_uri}
    plain = ["mlflow", "gc", "--older-than", "0s", "--backend-store-uri", database_uri]

    # Tracking URI = the database: the first mlflow-artifacts:/ URI raises, nothing is deleted.
    failed = subprocess.run(plain, env={**base, "MLFLOW_TRACKING_URI": database_uri}, capture_output=True,
                            text=True, timeout=300)  # fmt: skip
    assert failed.returncode != 0
    assert "tracking URI must be a valid http or https URI" in failed.stderr
    assert {k for k in bucket_objects(topo) if k.startswith(prefix)} == before
    with topo.tracking_env():
        assert MlflowClient().get_experiment(experiment).lifecycle_stage == "deleted"

    # Tracking URI = a running server: the run's objects go, the experiment's logged model's stay.
    done = subprocess.run(plain, env={**base, "MLFLOW_TRACKING_URI": server.url}, capture_output=True,
                          text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"Experiment with ID {experiment} has been permanently deleted." in done.stdout
    left = {k for k in bucket_objects(topo) if k.startswith(prefix)}
    assert left and all(k.startswith(f"{prefix}models/") for k in left), sorted(left)
