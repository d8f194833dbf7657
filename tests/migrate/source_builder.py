"""Build a realistic MLflow SQLite database + local artifact folder with the real client, and
read any MLflow (SQLite file or server) back into plain data to compare the two."""

from __future__ import annotations

import math
import os
from pathlib import Path

import mlflow
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag, ViewType

from testkit.mlflow_client import pointed_at


def build_source(directory: Path) -> dict:
    """mlflow.db + mlruns/ under `directory`, written the way a user's laptop would."""
    directory.mkdir(parents=True, exist_ok=True)
    db = directory / "mlflow.db"
    root = directory / "mlruns"
    uri = f"sqlite:///{db}"
    cwd = os.getcwd()
    # The default artifact root of a SQLite tracking URI is ./mlruns of the working directory.
    os.chdir(directory)
    try:
        with pointed_at(uri):
            return _populate(MlflowClient(tracking_uri=uri, registry_uri=uri), directory, root, db)
    finally:
        os.chdir(cwd)


def _populate(client: MlflowClient, directory: Path, root: Path, db: Path) -> dict:
    exp_a = client.create_experiment("exp-a", tags={"team": "vision", "note": "tab\there\nnewline \\ slash"})
    exp_b = client.create_experiment("exp-b")
    exp_gone = client.create_experiment("exp-deleted")
    files = directory / "files"
    (files / "nested" / "deep").mkdir(parents=True, exist_ok=True)
    (files / "readme.txt").write_text("hello artifacts\n")
    (files / "nested" / "deep" / "weights.bin").write_bytes(bytes(range(256)) * 40)
    (files / "nested" / "cfg.json").write_text('{"lr": 0.01}')

    runs = []
    for index, experiment_id in enumerate([exp_a, exp_a, exp_b]):
        run = client.create_run(experiment_id, run_name=f"run-{index}", tags={"stage": f"s{index}"})
        run_id = run.info.run_id
        client.log_batch(
            run_id,
            params=[Param("lr", str(0.01 * (index + 1))), Param("layers", "3"), Param("long", "x" * 600)],
            tags=[RunTag("mlflow.note.content", f"run {index} notes\nline 2")],
        )
        metrics = [Metric("loss", 1.0 / (step + 1) + index, 1_700_000_000_000 + step, step) for step in range(25)]
        metrics += [Metric("acc", 0.1 * step, 1_700_000_000_000 + step, step) for step in range(10)]
        metrics += [
            Metric("weird", value, 1_700_000_000_100 + i, i)
            for i, value in enumerate([math.nan, math.inf, -math.inf, 1e-300, 0.1 + 0.2])
        ]
        client.log_batch(run_id, metrics=metrics)
        client.log_artifacts(run_id, str(files))
        client.log_text(run_id, f"run {index}", "notes/run.txt")
        runs.append(run_id)
    for run_id in runs:
        client.set_terminated(run_id)

    # Dataset inputs (pandas dataset: digest, schema, profile and source are all stored).
    import pandas as pd

    frame = pd.DataFrame({"x": [1, 2, 3], "y": [0.5, 0.25, 0.125]})
    dataset = mlflow.data.from_pandas(frame, source="s3://datasets/train.parquet", name="train")
    with mlflow.start_run(run_id=runs[0]):
        mlflow.log_input(dataset, context="training", tags={"split": "train"})
    client.set_terminated(runs[0])

    deleted = client.create_run(exp_b, run_name="deleted-run")
    client.log_param(deleted.info.run_id, "p", "v")
    client.log_metric(deleted.info.run_id, "m", 3.0)
    client.log_text(deleted.info.run_id, "bye", "gone.txt")
    client.set_terminated(deleted.info.run_id)
    client.delete_run(deleted.info.run_id)
    client.delete_experiment(exp_gone)

    # A logged model (MLflow 3: models/<model_id>/artifacts under the experiment).
    model = client.create_logged_model(
        exp_a, name="clf", source_run_id=runs[0], params={"C": "1.0"}, tags={"kind": "sklearn-ish"}
    )
    model_dir = directory / "model"
    model_dir.mkdir(exist_ok=True)
    (model_dir / "MLmodel").write_text("flavors: {}\n")
    (model_dir / "model.pkl").write_bytes(os.urandom(2048))
    client.log_model_artifacts(model.model_id, str(model_dir))
    client.finalize_logged_model(model.model_id, "READY")

    client.create_registered_model("classifier", tags={"owner": "ml"}, description="the classifier")
    v1 = client.create_model_version("classifier", f"models:/{model.model_id}", run_id=runs[0], tags={"v": "1"})
    # An MLflow 2 style version whose source is a plain path under the artifact root.
    run_artifacts = client.get_run(runs[1]).info.artifact_uri
    v2 = client.create_model_version("classifier", f"{run_artifacts}/nested", run_id=runs[1], description="from a path")
    client.set_registered_model_alias("classifier", "champion", v1.version)
    client.set_registered_model_alias("classifier", "challenger", v2.version)
    client.set_model_version_tag("classifier", v2.version, "validated", "yes")

    # A trace: its artifact location tag points under the experiment.
    mlflow.set_experiment(experiment_id=exp_b)
    with mlflow.start_span("predict") as span:
        span.set_inputs({"q": "hello"})
        span.set_outputs({"a": "world"})
    trace_id = span.trace_id

    return {
        "db": db,
        "root": root,
        "experiments": [exp_a, exp_b, exp_gone],
        "runs": runs,
        "deleted_run": deleted.info.run_id,
        "model_id": model.model_id,
        "trace_id": trace_id,
    }


# -- reading back ----------------------------------------------------------------------------


def _walk(client: MlflowClient, run_id: str, path: str | None = None) -> list[tuple[str, int | None]]:
    out = []
    for item in client.list_artifacts(run_id, path):
        if item.is_dir:
            out += _walk(client, run_id, item.path)
        else:
            out.append((item.path, item.file_size))
    return out


def snapshot(
    tracking_uri: str, rewrite=lambda uri: uri, with_artifacts: bool = True, download_dir: Path | None = None
) -> dict:
    """Everything a user sees, as plain data. `rewrite` maps source locations to the
    expected target ones (identity when reading the source itself)."""
    # models:/ downloads resolve through the global registry URI: point it here meanwhile.
    with pointed_at(tracking_uri):
        return _snapshot(tracking_uri, rewrite, with_artifacts, download_dir)


def _snapshot(tracking_uri, rewrite, with_artifacts, download_dir) -> dict:
    client = MlflowClient(tracking_uri=tracking_uri, registry_uri=tracking_uri)
    state: dict = {"experiments": {}, "runs": {}, "models": {}, "logged_models": {}}
    for exp in client.search_experiments(view_type=ViewType.ALL):
        state["experiments"][exp.experiment_id] = {
            "name": exp.name,
            "location": rewrite(exp.artifact_location),
            "stage": exp.lifecycle_stage,
            "tags": dict(exp.tags),
            "created": exp.creation_time,
        }
        for run in client.search_runs([exp.experiment_id], run_view_type=ViewType.ALL):
            info = run.info
            history = {
                key: [
                    (m.step, m.timestamp, "nan" if math.isnan(m.value) else m.value)
                    for m in client.get_metric_history(info.run_id, key)
                ]
                for key in run.data.metrics
            }
            datasets = sorted(
                (
                    d.dataset.name,
                    d.dataset.digest,
                    d.dataset.source_type,
                    d.dataset.source,
                    d.dataset.schema,
                    d.dataset.profile,
                    tuple(sorted((t.key, t.value) for t in d.tags)),
                )
                for d in run.inputs.dataset_inputs
            )
            entry = {
                "experiment": info.experiment_id,
                "name": info.run_name,
                "status": info.status,
                "stage": info.lifecycle_stage,
                "start": info.start_time,
                "end": info.end_time,
                "artifact_uri": rewrite(info.artifact_uri),
                "params": dict(run.data.params),
                "tags": dict(run.data.tags),
                "history": history,
                "datasets": datasets,
            }
            if with_artifacts:
                listing = sorted(_walk(client, info.run_id))
                entry["artifacts"] = listing
                if download_dir is not None and listing:
                    local = client.download_artifacts(info.run_id, "", str(download_dir / info.run_id))
                    entry["contents"] = {path: (Path(local) / path).read_bytes() for path, _ in listing}
            state["runs"][info.run_id] = entry
        for model in client.search_logged_models([exp.experiment_id]):
            state["logged_models"][model.model_id] = {
                "name": model.name,
                "location": rewrite(model.artifact_location),
                "status": str(model.status),
                "params": dict(model.params),
                "tags": dict(model.tags),
                "run": model.source_run_id,
                "files": sorted((f.path, f.file_size) for f in client.list_logged_model_artifacts(model.model_id))
                if with_artifacts
                else None,
            }
    for rm in client.search_registered_models():
        versions = {}
        for mv in client.search_model_versions(f"name = '{rm.name}'"):
            versions[mv.version] = {
                "source": rewrite(mv.source),
                "run_id": mv.run_id,
                "status": mv.status,
                "tags": dict(mv.tags),
                "aliases": sorted(mv.aliases),
                "description": mv.description,
                "download": rewrite(client.get_model_version_download_uri(rm.name, mv.version)),
            }
            if download_dir is not None:
                # models:/ resolves through the registry to storage_location, then the artifact store.
                local = Path(
                    mlflow.artifacts.download_artifacts(
                        artifact_uri=f"models:/{rm.name}/{mv.version}",
                        dst_path=str(download_dir / f"{rm.name}-{mv.version}"),
                    )
                )
                versions[mv.version]["files"] = {
                    p.relative_to(local).as_posix(): p.read_bytes() for p in sorted(local.rglob("*")) if p.is_file()
                }
        state["models"][rm.name] = {
            # The REST client returns versions as strings, the SQL store as ints: compare strings.
            "tags": dict(rm.tags),
            "description": rm.description,
            "aliases": {k: str(v) for k, v in rm.aliases.items()},
            "versions": {str(k): v for k, v in versions.items()},
            "champion": str(client.get_model_version_by_alias(rm.name, "champion").version),
        }
    traces = client.search_traces(locations=sorted(state["experiments"]), max_results=100)
    state["traces"] = {
        t.info.trace_id: {
            "state": str(t.info.state),
            "spans": [(s.name, s.inputs, s.outputs) for s in t.data.spans],
            "location": rewrite(t.info.tags.get("mlflow.artifactLocation")),
        }
        for t in traces
    }
    return state
