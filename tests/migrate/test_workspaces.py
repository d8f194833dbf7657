"""A laptop's mlflow.db written with workspaces on: the migration keeps every row in its
workspace (the workspace columns and the workspaces table), and a server with
`--enable-workspaces` on the target shows each team only its own experiments, models and
artifacts."""

from __future__ import annotations

import os
from pathlib import Path

import mlflow
import pytest
from conftest import migrate_env, mlflow_server, run_migrate
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from testkit.mlflow_client import pointed_at

pytestmark = pytest.mark.e2e  # real PostgreSQL and S3 servers

TEAM = "team-a"


def build_workspace_source(directory: Path) -> dict:
    """An experiment with a run and an artifact, and a registered model, in TEAM; one experiment in default."""
    db, uri = directory / "mlflow.db", f"sqlite:///{directory / 'mlflow.db'}"
    cwd = os.getcwd()
    os.chdir(directory)  # the default artifact root of a SQLite URI is ./mlruns
    try:
        with pytest.MonkeyPatch.context() as patch, pointed_at(uri):
            patch.setenv("MLFLOW_ENABLE_WORKSPACES", "true")
            client = MlflowClient(tracking_uri=uri, registry_uri=uri)
            mlflow.create_workspace(TEAM, description="the A team")
            mlflow.set_workspace(TEAM)
            experiment = client.create_experiment("team-experiment")
            run = client.create_run(experiment)
            client.log_text(run.info.run_id, "team notes", "notes.txt")
            client.set_terminated(run.info.run_id)
            model = client.create_registered_model("team-model").name
            mlflow.set_workspace("default")
            default_experiment = client.create_experiment("default-experiment")
    finally:
        os.chdir(cwd)
    return {"db": db, "root": directory / "mlruns", "experiment": experiment, "run": run.info.run_id,
            "model": model, "default_experiment": default_experiment}  # fmt: skip


@pytest.fixture(scope="module")
def migrated(postgres, s3, tmp_path_factory):
    source = build_workspace_source(tmp_path_factory.mktemp("workspace-laptop"))
    dbname, bucket = "workspaces", "workspace-artifacts"
    postgres.create_database(dbname)
    s3.client().create_bucket(Bucket=bucket)
    url = postgres.url(dbname)
    result = run_migrate(
        "--source", str(source["db"]), "--artifact-root", str(source["root"]),
        "--artifacts-destination", f"s3://{bucket}/", env=migrate_env(s3, url),
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    return {**source, "dbname": dbname, "url": url, "bucket": bucket}


def rows(postgres, dbname: str, query: str) -> list[tuple]:
    conn = postgres.connect(dbname)
    try:
        with conn.cursor() as cur:
            cur.execute(query)
            return sorted(cur.fetchall())
    finally:
        conn.close()


def test_the_workspace_columns_and_table_arrive_as_they_were(postgres, migrated):
    db = migrated["dbname"]
    assert rows(postgres, db, "SELECT name, description FROM workspaces") == [
        ("default", "Default workspace for legacy resources"), (TEAM, "the A team")
    ]  # fmt: skip
    assert rows(postgres, db, "SELECT experiment_id::text, workspace FROM experiments") == sorted(
        [("0", "default"), (migrated["experiment"], TEAM), (migrated["default_experiment"], "default")]
    )
    assert rows(postgres, db, "SELECT name, workspace FROM registered_models") == [(migrated["model"], TEAM)]


def test_a_workspace_server_on_the_target_keeps_each_team_to_its_own(migrated, s3, tmp_path_factory):
    logs = tmp_path_factory.mktemp("workspace-server-logs")
    with mlflow_server(migrated["url"], migrated["bucket"], s3, logs, ["--enable-workspaces"]) as url:
        client = MlflowClient(tracking_uri=url, registry_uri=url)
        try:
            mlflow.set_workspace(TEAM)
            names = {e.name for e in client.search_experiments()}
            assert names == {"team-experiment"}
            assert client.get_registered_model(migrated["model"]).name == migrated["model"]
            # The artifact was copied to the bucket and is served from its rewritten location.
            local = mlflow.artifacts.download_artifacts(
                run_id=migrated["run"], artifact_path="notes.txt", dst_path=str(logs / "dl"), tracking_uri=url
            )
            assert Path(local).read_text() == "team notes"
            assert client.get_run(migrated["run"]).info.artifact_uri.startswith("mlflow-artifacts:/")
            mlflow.set_workspace("default")
            assert {e.name for e in client.search_experiments()} == {"Default", "default-experiment"}
            with pytest.raises(MlflowException):
                client.get_registered_model(migrated["model"])
        finally:
            mlflow.set_workspace(None)
