"""Kill MLflow, start it again from the spec: nothing logged before is lost.

conftest runs this module after the others on the shared stack, so the
snapshot also covers what they logged (big artifacts, registered models).
"""

from __future__ import annotations

import os
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from mlflow import MlflowClient
from mlflow.entities import ViewType

from .helpers import MODEL_CODE, sha256_file, unique

pytestmark = pytest.mark.e2e


def _artifacts(client: MlflowClient, run_id: str, path: str | None = None) -> list[tuple[str, int | None]]:
    found = []
    for item in client.list_artifacts(run_id, path):
        found += _artifacts(client, run_id, item.path) if item.is_dir else [(item.path, item.file_size)]
    return found


def snapshot(stack) -> dict:
    """Everything a user can read back, as plain data."""
    client = MlflowClient()
    state: dict = {"experiments": {}, "models": {}}
    for exp in client.search_experiments(view_type=ViewType.ALL):
        runs = {}
        for run in client.search_runs([exp.experiment_id], run_view_type=ViewType.ALL, max_results=1000):
            run_id = run.info.run_id
            runs[run_id] = {
                "info": (
                    run.info.run_name,
                    run.info.status,
                    run.info.start_time,
                    run.info.end_time,
                    run.info.artifact_uri,
                    run.info.lifecycle_stage,
                ),
                "params": run.data.params,
                "tags": run.data.tags,
                "metrics": run.data.metrics,
                "history": {
                    key: [(m.step, m.timestamp, m.value) for m in client.get_metric_history(run_id, key)]
                    for key in run.data.metrics
                },
                "artifacts": sorted(_artifacts(client, run_id)),
            }
        state["experiments"][exp.experiment_id] = {
            "name": exp.name,
            "tags": exp.tags,
            "stage": exp.lifecycle_stage,
            "runs": runs,
        }
    for model in client.search_registered_models():
        versions = client.search_model_versions(f"name = '{model.name}'")
        state["models"][model.name] = {
            "aliases": dict(model.aliases) if isinstance(model.aliases, dict) else sorted(model.aliases),
            "versions": sorted((v.version, v.source, v.run_id, v.status) for v in versions),
        }
    listing = stack.s3_client().get_paginator("list_objects_v2").paginate(Bucket=stack.bucket)
    state["objects"] = {o["Key"]: (o["Size"], o["ETag"]) for page in listing for o in page.get("Contents", [])}
    return state


def test_everything_survives_a_mlflow_restart(tracking, tmp_path):
    client = MlflowClient()
    # Data of our own, so the module is meaningful on its own too.
    experiment_id = mlflow.create_experiment(unique("e2e-restart"))
    artifact = tmp_path / "report.txt"
    artifact.write_bytes(os.urandom(64 * 1024))
    code = tmp_path / "affine_model.py"
    code.write_text(MODEL_CODE)
    name = unique("e2e-restart-model")
    with mlflow.start_run(experiment_id=experiment_id) as run:
        mlflow.log_param("epochs", "3")
        mlflow.set_tag("phase", "before-restart")
        for step in range(5):
            mlflow.log_metric("loss", 5.0 - step, step=step)
        mlflow.log_artifact(str(artifact))
        mlflow.pyfunc.log_model(
            name="model",
            python_model=str(code),
            registered_model_name=name,
            pip_requirements=[f"mlflow=={mlflow.__version__}"],
        )
    client.set_registered_model_alias(name, "prod", "1")

    before = snapshot(tracking)
    assert before["experiments"][experiment_id]["runs"][run.info.run_id]["params"] == {"epochs": "3"}
    old_pids = [inst.process.pid for inst in tracking.instances]
    log_sizes = [len(inst.log_text()) for inst in tracking.instances]

    tracking.restart_mlflow(kill=True)

    for inst, old_pid, offset in zip(tracking.instances, old_pids, log_sizes, strict=True):
        assert inst.process.pid != old_pid and inst.process.is_running()
        assert not Path(f"/proc/{old_pid}").exists()
        new_log = inst.log_text()[offset:]
        # The boot module ran again and found the schema in place.
        assert "database schema: current" in new_log, new_log[-2000:]
        assert not [line for line in new_log.splitlines() if "Traceback" in line or " ERROR " in line]

    # A write right after the restart goes through nginx (no stale upstream connection, no 502).
    with mlflow.start_run(experiment_id=experiment_id, run_name="after-restart"):
        mlflow.log_metric("ok", 1.0)

    after = snapshot(tracking)
    new_runs = set(after["experiments"][experiment_id]["runs"]) - set(before["experiments"][experiment_id]["runs"])
    assert len(new_runs) == 1
    for run_id in new_runs:
        del after["experiments"][experiment_id]["runs"][run_id]
    assert after == before

    downloaded = Path(
        mlflow.artifacts.download_artifacts(
            run_id=run.info.run_id, artifact_path="report.txt", dst_path=str(tmp_path / "dl")
        )
    )
    assert sha256_file(downloaded) == sha256_file(artifact)
    model = mlflow.pyfunc.load_model(f"models:/{name}@prod")
    assert list(model.predict(pd.DataFrame({"x": [10.0]}))) == [21.0]
