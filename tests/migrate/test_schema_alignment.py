"""A database from an old MLflow (schema 0c779009ac13, MLflow 1.x era, file:// locations) whose
artifact folder has moved since: the copy is upgraded, the user's file is not."""

from __future__ import annotations

import sqlite3

import pytest
import sqlalchemy
from alembic import command
from conftest import file_digest, migrate_env, run_migrate
from mlflow import MlflowClient
from mlflow.store.db.utils import _get_alembic_config

pytestmark = pytest.mark.e2e  # real PostgreSQL and S3 servers

OLD_REVISION = "0c779009ac13"
RUN = "0123456789abcdef0123456789abcdef"
OLD_ROOT = "/home/alice/project/mlruns"  # where the folder was when the runs were logged


def _old_database(path):
    """The schema as MLflow 1.x left it: initial tables, then migrations up to OLD_REVISION."""
    from mlflow.store.tracking.dbmodels.initial_models import Base as InitialBase

    engine = sqlalchemy.create_engine(f"sqlite:///{path}")
    InitialBase.metadata.create_all(engine)
    config = _get_alembic_config(str(engine.url))
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, OLD_REVISION)
    engine.dispose()
    with sqlite3.connect(path) as conn:
        conn.executemany(
            "INSERT INTO experiments VALUES (?, ?, ?, 'active')",
            [(0, "Default", f"file://{OLD_ROOT}/0"), (1, "old-exp", f"file://{OLD_ROOT}/1")],
        )
        conn.execute(
            "INSERT INTO runs (run_uuid, name, source_type, source_name, entry_point_name, user_id, status, "
            "start_time, end_time, source_version, lifecycle_stage, artifact_uri, experiment_id) "
            "VALUES (?, 'old-run', 'LOCAL', 'train.py', '', 'alice', 'FINISHED', 1, 2, '', 'active', ?, 1)",
            (RUN, f"file://{OLD_ROOT}/1/{RUN}/artifacts"),
        )
        conn.executemany(
            "INSERT INTO metrics (key, value, timestamp, run_uuid, step, is_nan) VALUES (?, ?, ?, ?, ?, ?)",
            [("loss", 1.0 / (s + 1), 100 + s, RUN, s, 0) for s in range(5)],
        )
        conn.execute("INSERT INTO latest_metrics VALUES ('loss', 0.2, 104, 4, 0, ?)", (RUN,))
        conn.execute("INSERT INTO params VALUES ('lr', '0.1', ?)", (RUN,))
        conn.execute("INSERT INTO tags VALUES ('mlflow.user', 'alice', ?)", (RUN,))
        conn.execute(
            "INSERT INTO registered_models (name, creation_time, last_updated_time) VALUES ('old-model', 1, 1)"
        )
        conn.execute(
            "INSERT INTO model_versions (name, version, creation_time, last_updated_time, current_stage, source, "
            "run_id, status) VALUES ('old-model', 1, 1, 1, 'Production', ?, ?, 'READY')",
            (f"file://{OLD_ROOT}/1/{RUN}/artifacts/model", RUN),
        )


def test_old_source_is_upgraded_in_a_copy(postgres, s3, new_database, new_bucket, tmp_path, monkeypatch):
    db = tmp_path / "mlflow.db"
    _old_database(db)
    moved = tmp_path / "backup" / "mlruns"  # the folder now lives here
    (moved / "1" / RUN / "artifacts" / "model").mkdir(parents=True)
    (moved / "1" / RUN / "artifacts" / "model" / "model.txt").write_text("weights")
    before = file_digest(db)
    name, url = new_database("old")
    bucket = new_bucket("old")

    result = run_migrate(
        "--source",
        str(db),
        "--artifact-root",
        str(moved),
        "--recorded-artifact-root",
        OLD_ROOT,
        "--artifacts-destination",
        f"s3://{bucket}/",
        env=migrate_env(s3, url),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"upgrading the source copy {OLD_REVISION} -> " in result.stdout

    # The user's file: same bytes, still at its old revision.
    assert file_digest(db) == before
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT version_num FROM alembic_version").fetchone()[0] == OLD_REVISION

    conn = postgres.connect(name)
    with conn.cursor() as cur:
        cur.execute("SELECT artifact_uri FROM runs")
        assert cur.fetchone()[0] == f"mlflow-artifacts:/1/{RUN}/artifacts"
        cur.execute("SELECT experiment_id, artifact_location FROM experiments ORDER BY 1")
        assert cur.fetchall() == [(0, "mlflow-artifacts:/0"), (1, "mlflow-artifacts:/1")]
        cur.execute("SELECT source, storage_location FROM model_versions")
        assert cur.fetchone() == (f"mlflow-artifacts:/1/{RUN}/artifacts/model", None)
    conn.close()
    keys = [o["Key"] for o in s3.client().list_objects_v2(Bucket=bucket)["Contents"]]
    assert keys == [f"1/{RUN}/artifacts/model/model.txt"]

    # MLflow of today reads the result (it refuses a schema that is not at its head).
    for key, value in s3.env().items():
        monkeypatch.setenv(key, value)
    client = MlflowClient(tracking_uri=url, registry_uri=url)
    run = client.get_run(RUN)
    assert run.data.params == {"lr": "0.1"} and run.data.metrics == {"loss": 0.2}
    assert [m.value for m in client.get_metric_history(RUN, "loss")] == [1.0 / (s + 1) for s in range(5)]
    assert client.get_model_version("old-model", "1").current_stage == "Production"
