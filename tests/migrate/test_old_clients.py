"""Sources written by real old MLflow clients (1.x and 2.x, each in its own venv built from the
pins in old_mlflow/), migrated, then read back through a server of the image's MLflow on the
target: everything the old client reported, every artifact by SHA-256, and the model loaded.

MLflow 1.30 records relative locations (`./mlruns/1/<run>/artifacts`, resolved against the
directory it ran in), 2.16 absolute paths; both must resolve on the new server, and a location
that does not must fail the run instead of being reported as verified.
"""

from __future__ import annotations

import hashlib
import shutil
import sqlite3
from pathlib import Path

import mlflow
import mlflow.pyfunc
import pandas as pd
import pytest
from conftest import migrate_env, mlflow_server, run_migrate
from mlflow import MlflowClient
from old_client import VERSIONS, requirements, venv_name, write_source

from testkit.mlflow_client import pointed_at

pytestmark = pytest.mark.e2e  # real PostgreSQL and S3 servers, and old clients from PyPI

# Built in the background from the session's start (tests/conftest.py).
PREBUILD_VENVS = [(requirements(version), venv_name(version)) for version in VERSIONS]


@pytest.fixture(scope="module", params=VERSIONS)
def old(request, postgres, s3, tmp_path_factory):
    """One old client's laptop project, migrated in proxied mode (read-only for the tests)."""
    version = request.param
    laptop = tmp_path_factory.mktemp(f"laptop-{version}")
    manifest = write_source(version, laptop)
    assert manifest["mlflow"] == version
    db, root = laptop / "mlflow.db", laptop / "mlruns"
    key = version.replace(".", "_")
    dbname, bucket = f"old_{key}", f"old-{key.replace('_', '-')}"
    postgres.create_database(dbname)
    s3.client().create_bucket(Bucket=bucket)
    url = postgres.url(dbname)
    args = ("--source", str(db), "--artifact-root", str(root), "--artifacts-destination", f"s3://{bucket}/")
    # For 1.x the dry run takes the workaround the issue reports as refused: the root spelled as
    # the database spells it. It must plan the same rewrites as the run without it.
    spelled = ("--recorded-artifact-root", "./mlruns") if version.startswith("1.") else ()
    dry = run_migrate(*args, *spelled, "--dry-run", env=migrate_env(s3, url))
    result = run_migrate(*args, env=migrate_env(s3, url))
    assert result.returncode == 0, result.stdout + result.stderr
    # A copy for the tampering test, made before a server connects (a template needs no sessions).
    conn = postgres.connect()
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{dbname}_tampered" TEMPLATE "{dbname}"')
    conn.close()
    return {
        "version": version,
        "laptop": laptop,
        "db": db,
        "root": root,
        "manifest": manifest,
        "url": url,
        "bucket": bucket,
        "args": args,
        "dry": dry,
        "result": result,
    }


@pytest.fixture(scope="module")
def server(old, s3, tmp_path_factory):
    with mlflow_server(old["url"], old["bucket"], s3, tmp_path_factory.mktemp("server-logs")) as url:
        yield url


def recorded(db: Path, query: str) -> list:
    conn = sqlite3.connect(db)
    try:
        return [row[0] for row in conn.execute(query)]
    finally:
        conn.close()


def test_the_old_client_recorded_its_own_location_form(old):
    """What makes the two sources differ: the form each version really writes."""
    runs = recorded(old["db"], "SELECT artifact_uri FROM runs")
    if old["version"].startswith("1."):
        assert all(uri.startswith("./mlruns/") for uri in runs), runs
    else:
        assert all(uri.startswith(str(old["root"]) + "/") for uri in runs), runs


def test_dry_run_and_migration_rewrite_every_location(old):
    for result in (old["dry"], old["result"]):
        assert result.returncode == 0, result.stdout + result.stderr
        out = result.stdout
        assert "experiments.artifact_location: 4 rewritten, 0 unchanged" in out
        assert "runs.artifact_uri: 5 rewritten, 0 unchanged" in out
        assert "model_versions.source: 1 rewritten, 0 unchanged" in out
        assert "warning" not in out and "will not resolve" not in out
        if not old["version"].startswith("1."):  # columns MLflow 1.30's schema does not have
            assert "model_versions.storage_location: 1 rewritten, 0 unchanged" in out
            assert "trace_tags.value (where key = 'mlflow.artifactLocation'): 1 rewritten, 0 unchanged" in out
    assert "locations: " in old["dry"].stdout and "will resolve on the new server" in old["dry"].stdout
    assert "stored locations resolve on the new server" in old["result"].stdout


def test_server_shows_everything_the_old_client_wrote(old, server, tmp_path):
    manifest = old["manifest"]
    client = MlflowClient(tracking_uri=server, registry_uri=server)
    experiments = {e.experiment_id: e for e in client.search_experiments(view_type=3)}
    assert {k: {"name": e.name, "lifecycle": e.lifecycle_stage} for k, e in experiments.items()} == manifest[
        "experiments"
    ]
    assert all(e.artifact_location.startswith("mlflow-artifacts:/") for e in experiments.values())
    for run_id, want in manifest["runs"].items():
        run = client.get_run(run_id)
        assert run.info.artifact_uri == f"mlflow-artifacts:/{want['experiment']}/{run_id}/artifacts"
        assert (run.info.status, run.info.lifecycle_stage) == (want["status"], want["lifecycle"])
        assert run.data.params == want["params"] and run.data.metrics == want["metrics"]
        assert {k: v for k, v in run.data.tags.items() if k in want["tags"]} == want["tags"]
        assert [[m.step, m.value] for m in client.get_metric_history(run_id, "loss")] == want["loss"]
        assert digests(client, run_id, tmp_path / run_id) == want["files"], run_id
    parent = manifest["runs"][manifest["ids"]["parent"]]
    assert {"model/MLmodel", "weights/deep/w.bin", "notes.txt"} <= set(parent["files"])
    assert manifest["runs"][manifest["ids"]["deleted"]]["lifecycle"] == "deleted"
    assert manifest["runs"][manifest["ids"]["failed"]]["status"] == "FAILED"
    assert any(r["tags"].get("mlflow.parentRunId") == manifest["ids"]["parent"] for r in manifest["runs"].values())


def test_traces_of_the_old_client_load_through_the_new_server(old, server):
    """A 2.x trace keeps its spans in an artifact (traces.json under the trace's location)."""
    traces = old["manifest"]["traces"]
    assert bool(traces) == (not old["version"].startswith("1."))  # tracing came in MLflow 2.14
    client = MlflowClient(tracking_uri=server, registry_uri=server)
    with pointed_at(server):  # the client downloads the spans through mlflow-artifacts:/
        for trace_id, spans in traces.items():
            assert [span.name for span in client.get_trace(trace_id).data.spans] == spans


def test_registered_model_loads_through_the_new_server(old, server):
    manifest = old["manifest"]
    client = MlflowClient(tracking_uri=server, registry_uri=server)
    versions = {v.version: v for v in client.search_model_versions("name='adder'")}
    assert {k: (v.current_stage, v.run_id) for k, v in versions.items()} == {
        k: (v["stage"], v["run_id"]) for k, v in manifest["models"].items()
    }
    # MLflow 2.16's client gives an alias's version as an int, 3.17's as a string: same data.
    assert client.get_registered_model("adder").aliases == {k: str(v) for k, v in manifest["aliases"].items()}
    uris = ["models:/adder/Production"] + [f"models:/adder@{alias}" for alias in manifest["aliases"]]
    assert old["version"].startswith("1.") or "models:/adder@champion" in uris
    with pointed_at(server):  # models:/ resolves against the global registry URI
        for uri in uris:
            model = mlflow.pyfunc.load_model(uri)
            assert list(model.predict(pd.DataFrame({"x": [1, 41]}))) == [2, 42], uri


def test_a_location_left_unresolvable_fails_verification(old, postgres, s3):
    """The reported bug: locations copied unchanged still said "verified". Put one run's stored
    location back to what the old client wrote, and delete one object another run needs."""
    clone = f"old_{old['version'].replace('.', '_')}_tampered"
    parent = old["manifest"]["ids"]["parent"]
    original = recorded(old["db"], f"SELECT artifact_uri FROM runs WHERE run_uuid = '{parent}'")[0]
    conn = postgres.connect(clone)
    with conn, conn.cursor() as cur:
        cur.execute("UPDATE runs SET artifact_uri = %s WHERE run_uuid = %s", (original, parent))
    conn.close()
    default_run = old["manifest"]["ids"]["default_run"]
    s3.client().delete_object(Bucket=old["bucket"], Key=f"0/{default_run}/artifacts/notes.txt")
    try:
        bad = run_migrate(*old["args"], "--verify-only", env=migrate_env(s3, postgres.url(clone)))
    finally:
        s3.client().put_object(
            Bucket=old["bucket"],
            Key=f"0/{default_run}/artifacts/notes.txt",
            Body=(old["root"] / "0" / default_run / "artifacts" / "notes.txt").read_bytes(),
        )
    assert bad.returncode == 1, bad.stdout + bad.stderr
    assert f"runs.artifact_uri of {parent}: stored as {original!r}, which the new server does not resolve" in bad.stderr
    assert f"runs.artifact_uri of {default_run}: 'mlflow-artifacts:/0/{default_run}/artifacts' names 1 file(s)" in (
        bad.stderr
    )
    assert "verified" not in bad.stdout


def test_unmappable_locations_are_refused_unless_kept(old, postgres, s3, new_database, new_bucket, tmp_path):
    """Another bucket and a path outside the root: listed with their counts, the dry run and the
    run refuse (nothing written); with the explicit flag they are copied as they are."""
    copy = tmp_path / "mlflow.db"
    shutil.copy(old["db"], copy)
    failed = old["manifest"]["ids"]["failed"]
    conn = sqlite3.connect(copy)
    with conn:
        conn.execute("UPDATE experiments SET artifact_location = 's3://someone-else/x' WHERE name = 'retired'")
        conn.execute("UPDATE runs SET artifact_uri = '/srv/elsewhere/artifacts' WHERE run_uuid = ?", (failed,))
    conn.close()
    name, url = new_database("unmapped")
    bucket = new_bucket("unmapped")
    args = ("--source", str(copy), "--artifact-root", str(old["root"]), "--artifacts-destination", f"s3://{bucket}/")
    for extra in (("--dry-run",), ()):
        refused = run_migrate(*args, *extra, env=migrate_env(s3, url))
        assert refused.returncode == 2, refused.stdout + refused.stderr
        assert "--keep-unmapped-locations" in refused.stderr
        assert "experiments.artifact_location: 1 in another store, e.g. s3://someone-else/x" in refused.stderr
        assert "runs.artifact_uri: 1 local path(s) outside the artifact root, e.g. /srv/elsewhere" in refused.stderr
    assert "Contents" not in s3.client().list_objects_v2(Bucket=bucket)
    kept = run_migrate(*args, "--keep-unmapped-locations", env=migrate_env(s3, url))
    assert kept.returncode == 0, kept.stdout + kept.stderr
    assert "left as they are (--keep-unmapped-locations)" in kept.stdout
    assert "2 left as they are" in kept.stdout
    conn = postgres.connect(name)
    with conn.cursor() as cur:
        cur.execute("SELECT artifact_uri FROM runs WHERE run_uuid = %s", (failed,))
        assert cur.fetchone()[0] == "/srv/elsewhere/artifacts"
    conn.close()


def digests(client: MlflowClient, run_id: str, directory: Path) -> dict[str, str]:
    if not client.list_artifacts(run_id):
        return {}
    directory.mkdir(parents=True)
    local = Path(client.download_artifacts(run_id, "", dst_path=str(directory)))
    return {
        p.relative_to(local).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in local.rglob("*")
        if p.is_file()
    }
