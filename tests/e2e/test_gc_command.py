"""The gc command line of components/specs/gc.py (prod's scheduled task, dev's `make gc`), run as
the image runs it against the dev topology: the deleted run's rows and objects go, nothing else.

Own topology (no proxy): a zero threshold collects every deleted run, which the shared one must
keep for the other modules. The command gets exactly what the ECS task gets: gc_spec()'s env and
its secrets as files, from the server venv with the image's PYTHONPATH.
"""

from __future__ import annotations

import hashlib
import subprocess
import tempfile
from pathlib import Path

import mlflow
import pytest
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from components.specs.gc import gc_spec
from images.mlflow import server_contract as contract
from testkit.topology import BOOT_DIR
from tests.e2e.conftest import start_topology, stop_topology

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def topo(server_venv):
    # The client talks to the server's own port (Host: 127.0.0.1:<port>).
    started = start_topology(settings={"tracking": {"allowedHosts": ["127.0.0.1", "127.0.0.1:*"]}}, nginx=False)
    yield started
    stop_topology(started)


def keys_under(topo, prefix: str) -> list[str]:
    listed = topo.s3_client().list_objects_v2(Bucket=topo.bucket, Prefix=prefix)
    return sorted(o["Key"] for o in listed.get("Contents", []))


def run_prefix(run) -> str:
    # mlflow-artifacts:/<experiment>/<run>/artifacts -> <experiment>/<run>/ under the bucket root.
    return run.info.artifact_uri.split(":/", 1)[1].lstrip("/").rsplit("/artifacts", 1)[0] + "/"


def run_gc(topo, older_than: str) -> subprocess.CompletedProcess:
    spec = gc_spec(older_than, topo.database_endpoint(), topo.artifact_endpoint())
    values = {
        contract.DB_PASSWORD: topo.db_password,
        contract.S3_ACCESS_KEY_ID: topo.s3_access_key,
        contract.S3_SECRET_ACCESS_KEY: topo.s3_secret_key,
    }
    with tempfile.TemporaryDirectory() as scratch:
        env = {
            "PATH": f"{topo.venv / 'bin'}:/usr/bin:/bin",
            "PYTHONPATH": str(BOOT_DIR),
            **spec.env,
            "TMPDIR": scratch,
            "HOME": scratch,
        }
        for name in spec.secret_env:
            path = Path(scratch) / name.lower()
            path.write_text(values[name])
            path.chmod(0o400)
            env[f"{name}_FILE"] = str(path)
        return subprocess.run(list(spec.argv), env=env, cwd=scratch, capture_output=True, text=True, timeout=300)


def test_gc_removes_the_deleted_runs_rows_and_objects_and_nothing_else(topo, tmp_path):
    payload = tmp_path / "weights.bin"
    payload.write_bytes(b"x" * 300_000)
    digest = hashlib.sha256(payload.read_bytes()).hexdigest()
    with topo.tracking_env():
        client = MlflowClient()
        experiment = client.create_experiment("gc")
        kept = client.create_run(experiment)
        client.log_metric(kept.info.run_id, "loss", 0.5)
        client.log_artifact(kept.info.run_id, str(payload), "model")
        gone = client.create_run(experiment)
        client.log_metric(gone.info.run_id, "loss", 0.7)
        client.log_artifact(gone.info.run_id, str(payload), "model")
        client.log_artifact(gone.info.run_id, str(payload), "other/deep")
        client.delete_run(gone.info.run_id)
        assert len(keys_under(topo, run_prefix(gone))) == 2

        # A day's threshold: the run was deleted seconds ago, so nothing goes.
        waited = run_gc(topo, "1d")
        assert waited.returncode == 0, waited.stderr
        assert client.get_run(gone.info.run_id).info.lifecycle_stage == "deleted"
        assert len(keys_under(topo, run_prefix(gone))) == 2

        result = run_gc(topo, "0s")
        assert result.returncode == 0, result.stderr
        assert f"Run with ID {gone.info.run_id} has been permanently deleted." in result.stdout
        with pytest.raises(MlflowException, match="RESOURCE_DOES_NOT_EXIST|not found"):
            client.get_run(gone.info.run_id)
        # Its objects went with its rows: MLflow resolved mlflow-artifacts:/ to the bucket itself.
        assert keys_under(topo, run_prefix(gone)) == []
        # The kept run reads back equal: its metric history and its artifact by SHA-256.
        assert [m.value for m in client.get_metric_history(kept.info.run_id, "loss")] == [0.5]
        assert keys_under(topo, run_prefix(kept)) == [f"{run_prefix(kept)}artifacts/model/weights.bin"]
        local = mlflow.artifacts.download_artifacts(run_id=kept.info.run_id, artifact_path="model/weights.bin",
                                                    dst_path=str(tmp_path / "back"))  # fmt: skip
        assert hashlib.sha256(Path(local).read_bytes()).hexdigest() == digest
    # Neither the owner's password nor any other secret was on gc's command line or environment.
    assert topo.db_owner_password not in result.stdout + result.stderr
    assert topo.db_password not in result.stdout + result.stderr
