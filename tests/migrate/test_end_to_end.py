"""The whole path on real servers: a client-built mlflow.db + mlruns/ migrated into PostgreSQL
and S3, then an MLflow server on the result, read back through the client."""

from __future__ import annotations

import subprocess
import sys

import pytest
from conftest import file_digest, migrate_env, mlflow_server, run_migrate, under_root
from mlflow import MlflowClient
from source_builder import snapshot

pytestmark = pytest.mark.e2e  # real PostgreSQL and S3 servers


def table_counts(postgres, dbname: str) -> dict[str, int]:
    conn = postgres.connect(dbname)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
            counts = {}
            for (table,) in cur.fetchall():
                cur.execute(f'SELECT count(*) FROM "{table}"')
                counts[table] = cur.fetchone()[0]
            return counts
    finally:
        conn.close()


@pytest.fixture(scope="module")
def migrated(postgres, s3, source, tmp_path_factory):
    """One proxied-mode migration the tests of this module share (read-only for them)."""
    dbname, bucket = "e2e", "e2e-artifacts"
    postgres.create_database(dbname)
    s3.client().create_bucket(Bucket=bucket)
    url = postgres.url(dbname)
    result = run_migrate(
        "--source",
        str(source["db"]),
        "--artifact-root",
        str(source["root"]),
        "--artifacts-destination",
        f"s3://{bucket}/",
        env=migrate_env(s3, url),
    )
    assert result.returncode == 0, result.stdout + result.stderr
    # Copies for the tests that change a target; made now, as a template needs no connection.
    clones = {}
    conn = postgres.connect()
    conn.autocommit = True
    with conn.cursor() as cur:
        for purpose in ("full", "tamper", "clean"):
            cur.execute(f'CREATE DATABASE "{dbname}_{purpose}" TEMPLATE "{dbname}"')
            clones[purpose] = postgres.url(f"{dbname}_{purpose}")
    conn.close()
    return {"db": dbname, "url": url, "bucket": bucket, "result": result, "clones": clones}


@pytest.fixture(scope="module")
def server(migrated, s3, tmp_path_factory):
    with mlflow_server(migrated["url"], migrated["bucket"], s3, tmp_path_factory.mktemp("server-logs")) as url:
        yield url


def test_server_shows_everything_the_source_had(server, source, tmp_path):
    # The source as the client sees it, locations rewritten the way the server must show them.
    rewrite = under_root(source["root"], "mlflow-artifacts:/")
    expected = snapshot(f"sqlite:///{source['db']}", rewrite=rewrite, download_dir=tmp_path / "source")
    actual = snapshot(server, download_dir=tmp_path / "server")
    assert actual == expected  # every field, metric history and artifact byte

    # What the issue lists, spelled out so a regression names itself.
    assert all(e["location"].startswith("mlflow-artifacts:/") for e in actual["experiments"].values())
    assert all(r["artifact_uri"].startswith("mlflow-artifacts:/") for r in actual["runs"].values())
    assert actual["logged_models"][source["model_id"]]["location"].startswith("mlflow-artifacts:/")
    assert actual["traces"][source["trace_id"]]["location"].startswith("mlflow-artifacts:/")
    assert len(actual["experiments"]) == 4 and len(actual["runs"]) == 4
    deleted = actual["runs"][source["deleted_run"]]
    assert deleted["stage"] == "deleted" and deleted["params"] == {"p": "v"}
    assert deleted["contents"] == {"gone.txt": b"bye"}
    first = actual["runs"][source["runs"][0]]
    assert first["datasets"] and first["datasets"][0][0] == "train"
    assert len(first["history"]["loss"]) == 25
    # MLflow itself stores +-inf as +-max float; NaN, tiny and non-round values survive exactly.
    big = 1.7976931348623157e308
    assert [v for _, _, v in first["history"]["weird"]] == ["nan", big, -big, 1e-300, 0.1 + 0.2]
    assert first["contents"]["nested/deep/weights.bin"] == bytes(range(256)) * 40
    classifier = actual["models"]["classifier"]
    assert classifier["champion"] == "1" and classifier["aliases"] == {"champion": "1", "challenger": "2"}
    assert classifier["versions"]["1"]["source"] == f"models:/{source['model_id']}"
    assert classifier["versions"]["2"]["source"].startswith("mlflow-artifacts:/")
    assert {"MLmodel", "model.pkl"} <= set(classifier["versions"]["1"]["files"])


def test_new_server_keeps_working_after_migration(server, source):
    """Sequences were reset: a new experiment gets a fresh id, and new artifacts land in S3."""
    client = MlflowClient(tracking_uri=server)
    highest = max(int(e) for e in source["expected"]["experiments"])
    new_id = client.create_experiment("created-after-migration")
    assert int(new_id) == highest + 1
    run = client.create_run(new_id)
    client.log_text(run.info.run_id, "fresh", "new.txt")
    assert [a.path for a in client.list_artifacts(run.info.run_id)] == ["new.txt"]
    assert run.info.artifact_uri == f"mlflow-artifacts:/{new_id}/{run.info.run_id}/artifacts"
    # Old and new artifacts sit side by side under the same layout.
    old_run = source["runs"][0]
    assert "readme.txt" in [a.path for a in client.list_artifacts(old_run)]


def test_source_file_is_never_modified(migrated, source):
    assert file_digest(source["db"]) == source["sha256"]
    out = migrated["result"].stdout
    assert "verified: row counts equal" in out
    assert "runs.artifact_uri: 4 rewritten" in out


def test_non_empty_target_is_refused_then_replaced(postgres, s3, source, migrated):
    name, url = f"{migrated['db']}_full", migrated["clones"]["full"]
    before = table_counts(postgres, name)
    args = (
        "--source",
        str(source["db"]),
        "--artifact-root",
        str(source["root"]),
        "--artifacts-destination",
        f"s3://{migrated['bucket']}/",
    )

    refused = run_migrate(*args, env=migrate_env(s3, url))
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "already holds MLflow data" in refused.stderr and "--replace" in refused.stderr
    assert table_counts(postgres, name) == before

    # Change something, then --replace puts the source's data back in one transaction.
    conn = postgres.connect(name)
    with conn, conn.cursor() as cur:
        cur.execute("DELETE FROM latest_metrics")
        cur.execute("UPDATE params SET value = 'changed'")
    conn.close()
    replaced = run_migrate(*args, "--replace", env=migrate_env(s3, url))
    assert replaced.returncode == 0, replaced.stdout + replaced.stderr
    assert "artifacts: 0 uploaded" in replaced.stdout  # already there, same size
    assert table_counts(postgres, name) == before
    assert file_digest(source["db"]) == source["sha256"]


def test_verification_catches_a_bad_copy(postgres, s3, source, migrated):
    name, url = f"{migrated['db']}_tamper", migrated["clones"]["tamper"]
    args = (
        "--source",
        str(source["db"]),
        "--artifact-root",
        str(source["root"]),
        "--artifacts-destination",
        f"s3://{migrated['bucket']}/",
        "--verify-only",
        "--sample-rows",
        "0",
    )

    clean = run_migrate(*args, env=migrate_env(s3, url))
    assert clean.returncode == 0, clean.stdout + clean.stderr

    conn = postgres.connect(name)
    with conn, conn.cursor() as cur:
        cur.execute("DELETE FROM metrics WHERE ctid IN (SELECT ctid FROM metrics LIMIT 1)")
        cur.execute("UPDATE params SET value = 'tampered' WHERE key = 'layers'")
        cur.execute("UPDATE runs SET artifact_uri = 'file:///old/path' WHERE lifecycle_stage = 'deleted'")
        cur.execute("SELECT setval(pg_get_serial_sequence('experiments', 'experiment_id'), 1, false)")
    conn.close()
    bad = run_migrate(*args, env=migrate_env(s3, url))
    assert bad.returncode == 1, bad.stdout + bad.stderr
    err = bad.stderr
    assert "verification failed" in err
    assert "metrics:" in err and "rows in the source" in err
    assert "params: row" in err and "'tampered'" in err
    assert "runs: row" in err and "artifact_uri" in err
    assert "experiments_experiment_id_seq" in err


def test_verification_catches_a_missing_artifact(s3, source, migrated, new_bucket):
    bucket = new_bucket("partial")
    client = s3.client()
    for item in client.list_objects_v2(Bucket=migrated["bucket"])["Contents"]:
        client.copy_object(
            Bucket=bucket, Key=item["Key"], CopySource={"Bucket": migrated["bucket"], "Key": item["Key"]}
        )
    args = (
        "--source",
        str(source["db"]),
        "--artifact-root",
        str(source["root"]),
        "--artifacts-destination",
        f"s3://{bucket}/",
        "--verify-only",
    )
    url = migrated["clones"]["clean"]
    assert run_migrate(*args, env=migrate_env(s3, url)).returncode == 0
    victim = next(k for k in (i["Key"] for i in client.list_objects_v2(Bucket=bucket)["Contents"]) if "models/" in k)
    client.delete_object(Bucket=bucket, Key=victim)
    bad = run_migrate(*args, env=migrate_env(s3, url))
    assert bad.returncode == 1
    assert f"artifact missing in s3://{bucket}/{victim}" in bad.stderr


def test_direct_mode_into_a_target_a_server_already_initialised(
    postgres, s3, source, new_database, new_bucket, tmp_path, monkeypatch
):
    """The platform's server creates the schema and experiment 0 on first boot; that target
    counts as empty. Direct mode: locations become s3:// and clients read the bucket."""
    name, url = new_database("direct")
    bucket = new_bucket("direct")
    # What a server's first start leaves behind, done by MLflow's own store.
    subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore as S; "
            "S(sys.argv[1], 'mlflow-artifacts:/')",
            url,
        ],
        check=True,
        capture_output=True,
    )
    assert table_counts(postgres, name)["experiments"] == 1

    result = run_migrate(
        "--source",
        str(source["db"]),
        "--artifact-root",
        str(source["root"]),
        "--artifacts-destination",
        f"s3://{bucket}/team/mlflow",
        "--artifact-mode",
        "direct",
        env=migrate_env(s3, url),
    )
    assert result.returncode == 0, result.stdout + result.stderr

    for key, value in s3.env().items():
        monkeypatch.setenv(key, value)
    destination = f"s3://{bucket}/team/mlflow/"
    actual = snapshot(url, download_dir=tmp_path)
    expected = snapshot(
        f"sqlite:///{source['db']}", rewrite=under_root(source["root"], destination), with_artifacts=False
    )
    assert actual["experiments"] == expected["experiments"]
    for run_id, run in source["expected"]["runs"].items():
        assert actual["runs"][run_id]["artifact_uri"] == expected["runs"][run_id]["artifact_uri"]
        assert actual["runs"][run_id]["artifact_uri"].startswith(destination)
        assert actual["runs"][run_id]["contents"] == run["contents"]  # read straight from S3
    keys = [i["Key"] for i in s3.client().list_objects_v2(Bucket=bucket)["Contents"]]
    assert all(k.startswith("team/mlflow/") for k in keys)
    assert file_digest(source["db"]) == source["sha256"]


def test_dry_run_writes_nothing_and_reads_platform_env(postgres, s3, source, new_database, new_bucket, tmp_path):
    """Dry run with the target given the way the server's task gets it (MLFLOW_DB_*)."""
    name, _ = new_database("dry")
    bucket = new_bucket("dry")
    secret = tmp_path / "db-password"
    secret.write_text(postgres.password + "\n")
    env = {
        **s3.env(),
        "MLFLOW_DB_HOST": postgres.host,
        "MLFLOW_DB_PORT": str(postgres.port),
        "MLFLOW_DB_NAME": name,
        "MLFLOW_DB_USER": postgres.superuser,
        "MLFLOW_DB_PASSWORD_FILE": str(secret),
        "MLFLOW_DB_SSLMODE": "disable",
    }
    result = run_migrate(
        "--source",
        str(source["db"]),
        "--artifact-root",
        str(source["root"]),
        "--artifacts-destination",
        f"s3://{bucket}/",
        "--dry-run",
        env=env,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "dry run: nothing was written" in result.stdout
    assert "(from MLFLOW_DB_*)" in result.stdout
    assert "runs.artifact_uri: 4 rewritten, 0 unchanged" in result.stdout
    assert postgres.password not in result.stdout + result.stderr
    assert table_counts(postgres, name) == {}
    assert s3.client().list_objects_v2(Bucket=bucket).get("KeyCount", 0) == 0


def test_source_staged_in_s3_as_a_one_off_task_runs_it(postgres, s3, source, new_database, new_bucket, tmp_path):
    """The prod path without a tunnel: mlflow.db and mlruns/ staged in S3, the target from the
    server task's own MLFLOW_DB_* and secrets delivered as *_FILE, artifacts copied S3 to S3."""
    staging, bucket = new_bucket("staging"), new_bucket("fromtask")
    name, _ = new_database("task")
    client = s3.client()
    client.upload_file(str(source["db"]), staging, "_migration/mlflow.db")
    for path in source["root"].rglob("*"):
        if path.is_file():
            client.upload_file(str(path), staging, f"_migration/mlruns/{path.relative_to(source['root']).as_posix()}")
    files = {}
    for var, value in (
        ("MLFLOW_DB_PASSWORD", postgres.password),
        ("AWS_ACCESS_KEY_ID", s3.access_key),
        ("AWS_SECRET_ACCESS_KEY", s3.secret_key),
    ):
        files[f"{var}_FILE"] = str(tmp_path / var)
        (tmp_path / var).write_text(value)
    env = {
        **files,
        "MLFLOW_S3_ENDPOINT_URL": s3.endpoint_url,
        "AWS_DEFAULT_REGION": s3.region,
        "MLFLOW_DB_HOST": postgres.host,
        "MLFLOW_DB_PORT": str(postgres.port),
        "MLFLOW_DB_NAME": name,
        "MLFLOW_DB_USER": postgres.superuser,
        "MLFLOW_DB_SSLMODE": "disable",
    }
    result = run_migrate(
        "--source",
        f"s3://{staging}/_migration/mlflow.db",
        "--artifact-root",
        f"s3://{staging}/_migration/mlruns",
        "--recorded-artifact-root",
        str(source["root"]),
        "--artifacts-destination",
        f"s3://{bucket}/",
        env=env,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "runs.artifact_uri: 4 rewritten" in result.stdout and "verified:" in result.stdout

    listing = sorted((i["Key"], i["Size"]) for i in client.list_objects_v2(Bucket=bucket)["Contents"])
    local = sorted(
        (p.relative_to(source["root"]).as_posix(), p.stat().st_size) for p in source["root"].rglob("*") if p.is_file()
    )
    assert listing == local  # the same layout as an upload from the laptop
    conn = postgres.connect(name)
    with conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM runs WHERE artifact_uri LIKE 'mlflow-artifacts:/%'")
        assert cur.fetchone()[0] == 4
    conn.close()
