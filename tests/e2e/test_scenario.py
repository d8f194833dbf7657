"""The user's scenario through nginx with the generated credentials and the real mlflow client."""

from __future__ import annotations

import hashlib
import tempfile
import time
from pathlib import Path

import mlflow
import pandas as pd
import pytest
from mlflow import MlflowClient
from mlflow.entities import Metric, Param, RunTag

from .helpers import MODEL_CODE, sha256_file, unique, write_random

pytestmark = pytest.mark.e2e

BIG_ARTIFACT_BYTES = 210 * 1024 * 1024  # over 200 MB, under the shared stack's 300m limit


def test_experiments_runs_params_tags_metrics_and_batch(tracking):
    client = MlflowClient()
    experiment_id = mlflow.create_experiment(unique("e2e-tracking"), tags={"team": "platform"})
    assert client.get_experiment(experiment_id).tags["team"] == "platform"

    with mlflow.start_run(experiment_id=experiment_id, run_name="first") as run:
        mlflow.log_params({"lr": "0.01", "optimizer": "adam"})
        mlflow.set_tags({"stage": "e2e", "unicode": "é✓"})
        for step in range(20):
            mlflow.log_metric("loss", 1.0 / (step + 1), step=step)
    first = run.info.run_id

    second = client.create_run(experiment_id, run_name="batch").info.run_id
    now = int(time.time() * 1000)
    client.log_batch(
        second,
        metrics=[Metric(f"m{i}", float(i), now, 0) for i in range(100)]
        + [Metric("acc", 0.5 + step / 100, now + step, step) for step in range(10)],
        params=[Param(f"p{i}", str(i)) for i in range(20)],
        tags=[RunTag("source", "log_batch")],
    )
    client.set_terminated(second)

    got = client.get_run(first).data
    assert got.params == {"lr": "0.01", "optimizer": "adam"}
    assert got.tags["stage"] == "e2e" and got.tags["unicode"] == "é✓"
    history = client.get_metric_history(first, "loss")
    assert [m.step for m in history] == list(range(20))
    assert [m.value for m in history] == pytest.approx([1.0 / (s + 1) for s in range(20)])

    got = client.get_run(second).data
    assert {f"m{i}": float(i) for i in range(100)}.items() <= got.metrics.items()
    assert got.metrics["acc"] == pytest.approx(0.59)  # latest step wins
    assert len(client.get_metric_history(second, "acc")) == 10
    assert got.params == {f"p{i}": str(i) for i in range(20)}
    assert got.tags["source"] == "log_batch"
    assert client.get_run(second).info.status == "FINISHED"

    found = client.search_runs([experiment_id], filter_string="params.optimizer = 'adam'")
    assert [r.info.run_id for r in found] == [first]
    found = client.search_runs([experiment_id], filter_string="metrics.m99 > 98")
    assert [r.info.run_id for r in found] == [second]


def test_small_and_big_artifacts_round_trip_and_land_in_the_bucket(tracking):
    # Not tmp_path: pytest keeps those, and these hold over 400 MB.
    with tempfile.TemporaryDirectory(prefix="e2e-artifacts-") as work:
        check_artifact_round_trip(tracking, Path(work))


def check_artifact_round_trip(tracking, work: Path) -> None:
    client = MlflowClient()
    experiment_id = mlflow.create_experiment(unique("e2e-artifacts"))
    upload = work / "upload"
    (upload / "nested").mkdir(parents=True)
    small = upload / "nested" / "notes.txt"
    small.write_text("hello artifacts\n" * 100)
    big = upload / "big.bin"
    big_sha = write_random(big, BIG_ARTIFACT_BYTES)

    with mlflow.start_run(experiment_id=experiment_id) as run:
        mlflow.log_artifact(str(small), artifact_path="docs")
        mlflow.log_artifact(str(big), artifact_path="data")
    run_id = run.info.run_id
    # Proxied artifacts: the client only ever sees the mlflow-artifacts scheme.
    assert run.info.artifact_uri == f"mlflow-artifacts:/{experiment_id}/{run_id}/artifacts"

    listed = {a.path: a.file_size for a in client.list_artifacts(run_id, "data")}
    assert listed == {"data/big.bin": BIG_ARTIFACT_BYTES}

    download = work / "download"
    download.mkdir()
    local = Path(mlflow.artifacts.download_artifacts(run_id=run_id, dst_path=str(download)))
    assert sha256_file(local / "docs" / "notes.txt") == sha256_file(small)
    assert sha256_file(local / "data" / "big.bin") == big_sha

    # The objects are in the bucket under <experiment>/<run>/artifacts/, byte for byte.
    s3 = tracking.s3_client()
    prefix = f"{experiment_id}/{run_id}/artifacts/"
    objects = {o["Key"]: o["Size"] for o in s3.list_objects_v2(Bucket=tracking.bucket, Prefix=prefix)["Contents"]}
    assert objects == {prefix + "docs/notes.txt": small.stat().st_size, prefix + "data/big.bin": BIG_ARTIFACT_BYTES}
    body = s3.get_object(Bucket=tracking.bucket, Key=prefix + "docs/notes.txt")["Body"].read()
    assert body == small.read_bytes()
    digest = hashlib.sha256()
    for chunk in s3.get_object(Bucket=tracking.bucket, Key=prefix + "data/big.bin")["Body"].iter_chunks(1 << 20):
        digest.update(chunk)
    assert digest.hexdigest() == big_sha

    # In the dev stack only nginx is published: both transfers must have crossed it
    # whole, not gone to presigned S3 URLs (http://minio:9000 is unreachable there).
    big_path = f"/api/2.0/mlflow-artifacts/artifacts/{prefix}data/big.bin"
    crossed = [
        (e["method"], e["status"])
        for e in tracking.access_log()
        if e["path"] == big_path and (e["sent"] >= BIG_ARTIFACT_BYTES or e["received"] >= BIG_ARTIFACT_BYTES)
    ]
    assert crossed == [("PUT", 200), ("GET", 200)]
    assert not [e for e in tracking.access_log() if "/mlflow-artifacts/presigned/" in e["path"]]


def test_log_register_alias_load_and_predict(tracking, tmp_path):
    client = MlflowClient()
    name = unique("e2e-model")
    experiment_id = mlflow.create_experiment(unique("e2e-models"))
    code = tmp_path / "affine_model.py"
    code.write_text(MODEL_CODE)

    with mlflow.start_run(experiment_id=experiment_id):
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=str(code),
            registered_model_name=name,
            # Explicit requirements: inference would spend seconds in a subprocess.
            pip_requirements=[f"mlflow=={mlflow.__version__}"],
        )
    version = info.registered_model_version
    assert str(version) == "1"
    client.set_registered_model_alias(name, "champion", version)
    assert client.get_model_version_by_alias(name, "champion").version == "1"

    model = mlflow.pyfunc.load_model(f"models:/{name}@champion")
    prediction = model.predict(pd.DataFrame({"x": [1.0, 2.0, 3.0]}))
    assert list(prediction) == [3.0, 5.0, 7.0]

    # The model's files went to the bucket too (logged models live under <experiment>/models/).
    s3 = tracking.s3_client()
    keys = [
        o["Key"]
        for o in s3.list_objects_v2(Bucket=tracking.bucket, Prefix=f"{experiment_id}/models/").get("Contents", [])
    ]
    assert any(key.endswith("/artifacts/MLmodel") for key in keys), keys
