"""Run by an old MLflow client (1.x or 2.x) in its own venv, in the user's project directory, as a
user on a laptop would: `sqlite:///mlflow.db` (a path relative to the working directory) and the
client's default artifact root. Writes a manifest (argv[1]) of what the client itself reports,
which the test compares with what the new server shows after the migration.

Only APIs both MLflow 1.30 and 2.16 have; aliases where the client has them.
"""

import hashlib
import json
import os
import sys

import mlflow
import mlflow.pyfunc
from mlflow.tracking import MlflowClient


class Adder(mlflow.pyfunc.PythonModel):
    """Pickled by value (defined in __main__), so loading needs no code of this file."""

    def predict(self, context, model_input):
        return model_input["x"] + 1


def digests(client, run_id):
    """path -> sha256 of every artifact file of a run, downloaded through the client."""
    found = {}
    if not client.list_artifacts(run_id):
        return found  # no artifact folder at all: the old client has nothing to download
    target = os.path.abspath(os.path.join("downloads", run_id))
    os.makedirs(target)
    directory = client.download_artifacts(run_id, "", dst_path=target)
    for base, _dirs, names in os.walk(directory):
        for name in names:
            path = os.path.join(base, name)
            found[os.path.relpath(path, directory).replace(os.sep, "/")] = hashlib.sha256(
                open(path, "rb").read()
            ).hexdigest()
    return found


def main(manifest_path):
    mlflow.set_tracking_uri("sqlite:///mlflow.db")
    client = MlflowClient()
    with open("notes.txt", "w") as f:
        f.write("hello from an old client\n")
    os.makedirs("weights/deep", exist_ok=True)
    with open("weights/deep/w.bin", "wb") as f:
        f.write(bytes(range(256)) * 16)

    # The Default experiment (0) holds one run too.
    with mlflow.start_run() as run:
        mlflow.log_param("where", "default")
        mlflow.log_artifact("notes.txt")

    mlflow.set_experiment("training")
    with mlflow.start_run(run_name="parent") as parent:
        mlflow.log_params({"lr": "0.1", "layers": "3"})
        for step in range(5):
            mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
        mlflow.set_tag("team", "ml")
        mlflow.log_artifact("notes.txt")
        mlflow.log_artifacts("weights", artifact_path="weights")
        with mlflow.start_run(run_name="child", nested=True):
            mlflow.log_metric("acc", 0.9)
            mlflow.log_artifact("notes.txt", artifact_path="child")
        mlflow.pyfunc.log_model("model", python_model=Adder(), registered_model_name="adder")

    failed = client.create_run(client.get_experiment_by_name("training").experiment_id)
    client.log_param(failed.info.run_id, "broken", "yes")
    client.set_terminated(failed.info.run_id, "FAILED")

    other = client.create_experiment("scratch")
    with mlflow.start_run(experiment_id=other) as gone:
        mlflow.log_artifact("notes.txt")
    client.delete_run(gone.info.run_id)
    retired = client.create_experiment("retired")
    client.delete_experiment(retired)

    traces = {}
    if hasattr(mlflow, "start_span"):  # MLflow >= 2.14: a trace, its spans stored as an artifact
        with mlflow.start_span(name="predict") as span:
            span.set_inputs({"x": 1})
            span.set_outputs({"y": 2})
        for trace in client.search_traces([client.get_experiment_by_name("training").experiment_id]):
            traces[trace.info.request_id] = [s.name for s in trace.data.spans]

    client.transition_model_version_stage("adder", "1", "Production")
    if hasattr(client, "set_registered_model_alias"):  # MLflow >= 2.3
        client.set_registered_model_alias("adder", "champion", "1")

    manifest = {"mlflow": mlflow.__version__, "experiments": {}, "runs": {}, "models": {}}
    for experiment in client.search_experiments(view_type=3):  # ViewType.ALL
        manifest["experiments"][experiment.experiment_id] = {
            "name": experiment.name,
            "lifecycle": experiment.lifecycle_stage,
        }
        for r in client.search_runs([experiment.experiment_id], run_view_type=3):
            manifest["runs"][r.info.run_id] = {
                "experiment": r.info.experiment_id,
                "status": r.info.status,
                "lifecycle": r.info.lifecycle_stage,
                "params": r.data.params,
                "metrics": r.data.metrics,
                "tags": {
                    k: v
                    for k, v in r.data.tags.items()
                    if not k.startswith("mlflow.") or k in ("mlflow.parentRunId", "mlflow.runName")
                },
                "loss": [(m.step, m.value) for m in client.get_metric_history(r.info.run_id, "loss")],
                "files": digests(client, r.info.run_id),
            }
    for version in client.search_model_versions("name='adder'"):
        manifest["models"][version.version] = {
            "stage": version.current_stage,
            "run_id": version.run_id,
        }
    manifest["traces"] = traces
    manifest["aliases"] = dict(getattr(client.get_registered_model("adder"), "aliases", None) or {})
    manifest["ids"] = {
        "default_run": run.info.run_id,
        "parent": parent.info.run_id,
        "failed": failed.info.run_id,
        "deleted": gone.info.run_id,
    }
    with open(manifest_path, "w") as f:
        json.dump(manifest, f, indent=1, sort_keys=True)


if __name__ == "__main__":
    main(sys.argv[1])
