"""What the upgrade test writes with one MLflow and reads back with another: run as a script in
either venv (`python upgrade_scenario.py write|read`, MLFLOW_TRACKING_URI set), so each side uses
its own client. `read` prints one JSON document: every experiment, run, metric history, artifact
(by SHA-256), registered model, version and alias. No trace: MLflow 3.0.0's own client cannot
read back the trace it logged through a 3.0.0 server (its trace-data download answers 5xx and is
retried for minutes), so there is nothing equal to compare."""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tempfile
from pathlib import Path

import mlflow
from mlflow import MlflowClient

EXPERIMENT = "upgrade-e2e"
MODEL = "upgrade-model"


def write() -> None:
    client = MlflowClient()
    experiment_id = mlflow.create_experiment(EXPERIMENT, tags={"team": "platform"})
    mlflow.set_experiment(experiment_id=experiment_id)
    with tempfile.TemporaryDirectory() as scratch:
        for index in range(2):
            with mlflow.start_run(run_name=f"run-{index}") as run:
                mlflow.log_params({"lr": str(0.1 * (index + 1)), "layers": "3"})
                mlflow.set_tags({"stage": "train", "index": str(index)})
                for step in range(20):
                    mlflow.log_metric("loss", 1.0 / (step + 1 + index), step=step, timestamp=1_700_000_000_000 + step)
                path = Path(scratch) / f"notes-{index}.txt"
                path.write_text(f"run {index}\n" * 100)
                mlflow.log_artifact(str(path), artifact_path="docs")
                blob = Path(scratch) / "weights.bin"
                blob.write_bytes(os.urandom(1 << 20))
                mlflow.log_artifact(str(blob), artifact_path="model")
                if index == 0:
                    first_run = run.info.run_id
    client.create_registered_model(MODEL, tags={"owner": "platform"})
    version = client.create_model_version(MODEL, source=f"runs:/{first_run}/model", run_id=first_run)
    client.set_registered_model_alias(MODEL, "champion", version.version)


def read() -> dict:
    client = MlflowClient()
    experiment = client.get_experiment_by_name(EXPERIMENT)
    runs = client.search_runs([experiment.experiment_id], order_by=["attributes.run_name ASC"])
    out: dict = {
        "experiment": {"name": experiment.name, "tags": experiment.tags, "lifecycle": experiment.lifecycle_stage},
        "experiments": sorted(e.name for e in client.search_experiments()),
        "runs": [],
    }
    with tempfile.TemporaryDirectory() as scratch:
        for run in runs:
            artifacts = {}
            local = Path(client.download_artifacts(run.info.run_id, "", scratch + "/" + run.info.run_id))
            for file in sorted(p for p in local.rglob("*") if p.is_file()):
                artifacts[file.relative_to(local).as_posix()] = hashlib.sha256(file.read_bytes()).hexdigest()
            out["runs"].append({
                "id": run.info.run_id,
                "name": run.info.run_name,
                "status": run.info.status,
                "params": run.data.params,
                "tags": {k: v for k, v in run.data.tags.items()},
                "loss": [(m.step, m.value, m.timestamp) for m in client.get_metric_history(run.info.run_id, "loss")],
                "artifacts": artifacts,
            })  # fmt: skip
    model = client.get_registered_model(MODEL)
    out["model"] = {
        "name": model.name,
        "tags": model.tags,
        "aliases": dict(model.aliases) if isinstance(model.aliases, dict) else model.aliases,
        "versions": [
            (v.version, v.run_id, v.source, v.status) for v in client.search_model_versions(f"name='{MODEL}'")
        ],
        "champion": client.get_model_version_by_alias(MODEL, "champion").version,
    }
    return out


if __name__ == "__main__":
    if sys.argv[1] == "write":
        write()
    else:
        print(json.dumps(read(), sort_keys=True))
