"""Bad input: clear errors, exit code 2, nothing written, the source file untouched."""

from __future__ import annotations

import shutil
import sqlite3

import pytest
from conftest import file_digest, migrate_env, run_migrate

from testkit import free_port

pytestmark = pytest.mark.e2e  # real PostgreSQL and S3 servers


def _args(db, root, bucket="unused"):
    return ("--source", str(db), "--artifact-root", str(root), "--artifacts-destination", f"s3://{bucket}/")


def _copy_source(source, tmp_path):
    db = tmp_path / "mlflow.db"
    shutil.copyfile(source["db"], db)
    return db


def test_missing_source(s3, tmp_path):
    result = run_migrate(*_args(tmp_path / "nope.db", tmp_path), env=migrate_env(s3, "postgresql://u@127.0.0.1:1/x"))
    assert result.returncode == 2
    assert f"source database not found: {tmp_path / 'nope.db'}" in result.stderr
    assert not (tmp_path / "nope.db").exists()


@pytest.mark.parametrize(
    "content, message",
    [
        (b"this is a CSV file, not a database\n", "not a SQLite database"),
        (b"SQLite format 3\x00" + b"\xff" * 5000, "cannot be read"),
    ],
    ids=["not-sqlite", "bad-pages"],
)
def test_garbage_source(s3, tmp_path, content, message):
    db = tmp_path / "mlflow.db"
    db.write_bytes(content)
    before = file_digest(db)
    result = run_migrate(*_args(db, tmp_path), env=migrate_env(s3, "postgresql://u@127.0.0.1:1/x"))
    assert result.returncode == 2, result.stdout + result.stderr
    assert message in result.stderr
    assert file_digest(db) == before


def test_truncated_source(s3, source, tmp_path):
    """Half of a real database: the header is fine, the pages behind it are gone."""
    db = tmp_path / "mlflow.db"
    data = source["db"].read_bytes()
    db.write_bytes(data[: len(data) // 2])
    before = file_digest(db)
    result = run_migrate(*_args(db, source["root"]), env=migrate_env(s3, "postgresql://u@127.0.0.1:1/x"))
    assert result.returncode == 2, result.stdout + result.stderr
    assert "source database" in result.stderr and ("corrupt" in result.stderr or "cannot be read" in result.stderr)
    assert file_digest(db) == before


def test_sqlite_that_is_not_mlflow(s3, tmp_path):
    db = tmp_path / "other.db"
    with sqlite3.connect(db) as conn:
        conn.execute("CREATE TABLE notes (id INTEGER PRIMARY KEY, body TEXT)")
    result = run_migrate(*_args(db, tmp_path), env=migrate_env(s3, "postgresql://u@127.0.0.1:1/x"))
    assert result.returncode == 2
    assert "not an MLflow tracking database" in result.stderr


def test_basic_auth_database_is_refused_with_what_to_do(s3, tmp_path):
    """A basic_auth.db made by MLflow's own auth migrations (what `mlflow server --app-name
    basic-auth` creates on a laptop), with a user in it: refused by name, with the alternative."""
    import sqlalchemy
    from mlflow.server.auth.db.utils import migrate

    db = tmp_path / "basic_auth.db"
    engine = sqlalchemy.create_engine(f"sqlite:///{db}")
    migrate(engine, "head")
    with engine.begin() as conn:
        conn.execute(sqlalchemy.text("INSERT INTO users (username, password_hash, is_admin) VALUES ('alice', 'x', 0)"))
    engine.dispose()
    before = file_digest(db)
    result = run_migrate(*_args(db, tmp_path), env=migrate_env(s3, "postgresql://u@127.0.0.1:1/x"))
    assert result.returncode == 2, result.stdout + result.stderr
    assert "is MLflow's basic-auth database (users and permissions)" in result.stderr
    assert "AuthServiceClient: create_user, grant_user_permission" in result.stderr
    assert file_digest(db) == before


def test_relative_recorded_root_is_accepted_and_moved_folder_still_detected(s3, source, new_database, tmp_path):
    """`--recorded-artifact-root ./mlruns` is what MLflow 1.x users reach for; it is accepted
    (resolved against --recorded-cwd) and, when it names no stored location, the hint names the
    root the database records instead of refusing the relative spelling."""
    _, url = new_database("relative")
    result = run_migrate(
        *_args(source["db"], source["root"]),
        "--recorded-artifact-root",
        "./mlruns",
        "--recorded-cwd",
        "/nowhere",
        "--dry-run",
        env=migrate_env(s3, url),
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert "must be an absolute path" not in result.stderr
    assert "no stored artifact location is under /nowhere/mlruns" in result.stderr
    relative_cwd = run_migrate(
        *_args(source["db"], source["root"]), "--recorded-cwd", "project", "--dry-run", env=migrate_env(s3, url)
    )
    assert relative_cwd.returncode == 2
    assert "--recorded-cwd must be an absolute path" in relative_cwd.stderr


def test_unreachable_target(s3, source):
    port = free_port()  # nothing listens here
    url = f"postgresql://mlflow:s3cret-Pa55@127.0.0.1:{port}/mlflow"
    result = run_migrate(*_args(source["db"], source["root"]), env=migrate_env(s3, url))
    assert result.returncode == 2, result.stdout + result.stderr
    assert (
        f"cannot connect to the target database postgresql+psycopg2://mlflow:***@127.0.0.1:{port}/mlflow"
        in result.stderr
    )
    assert "s3cret-Pa55" not in result.stdout + result.stderr
    assert file_digest(source["db"]) == source["sha256"]


def test_wrong_password_is_not_echoed(postgres, s3, source, new_database):
    name, _ = new_database("pw")
    url = postgres.url(name, password="not-the-password-xyz")
    result = run_migrate(*_args(source["db"], source["root"]), "--target-url", url, env=dict(s3.env()))
    assert result.returncode == 2
    assert "password authentication failed" in result.stderr
    assert "not-the-password-xyz" not in result.stdout + result.stderr
    assert "prefer $MLFLOW_MIGRATE_TARGET_URL" in result.stdout  # nudged off the command line


def test_not_postgres_target(s3, source):
    result = run_migrate(*_args(source["db"], source["root"]), env=migrate_env(s3, "mysql://u:pw@127.0.0.1/x"))
    assert result.returncode == 2
    assert "target must be PostgreSQL" in result.stderr and ":pw@" not in result.stderr


def test_missing_bucket(postgres, s3, source, new_database):
    name, url = new_database("nobucket")
    result = run_migrate(*_args(source["db"], source["root"], bucket="no-such-bucket"), env=migrate_env(s3, url))
    assert result.returncode == 2, result.stdout + result.stderr
    assert "bucket 'no-such-bucket' does not exist" in result.stderr
    conn = postgres.connect(name)
    with conn.cursor() as cur:  # refused before the schema was created
        cur.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
        assert cur.fetchone()[0] == 0
    conn.close()


def test_orphan_rows_are_reported_before_anything_is_written(postgres, s3, source, new_database, new_bucket, tmp_path):
    """SQLite never enforced the foreign keys; PostgreSQL will. Say so up front."""
    db = _copy_source(source, tmp_path)
    with sqlite3.connect(db) as conn:
        run_id = conn.execute("SELECT run_uuid FROM runs WHERE lifecycle_stage = 'deleted'").fetchone()[0]
        conn.execute("DELETE FROM runs WHERE run_uuid = ?", (run_id,))  # a hand-rolled cleanup
    before = file_digest(db)
    name, url = new_database("orphans")
    bucket = new_bucket("orphans")
    result = run_migrate(*_args(db, source["root"], bucket), env=migrate_env(s3, url))
    assert result.returncode == 2, result.stdout + result.stderr
    assert "params: 1 row(s) pointing at missing runs" in result.stderr
    assert "metrics: 1 row(s) pointing at missing runs" in result.stderr
    assert file_digest(db) == before
    assert s3.client().list_objects_v2(Bucket=bucket).get("KeyCount", 0) == 0


def test_value_too_long_for_postgres(s3, source, new_database, tmp_path):
    """SQLite ignores VARCHAR(n); PostgreSQL does not. Found before the copy, not half-way."""
    db = _copy_source(source, tmp_path)
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE runs SET name = ? WHERE rowid = (SELECT min(rowid) FROM runs)", ("n" * 300,))
    _, url = new_database("long")
    result = run_migrate(*_args(db, source["root"]), "--skip-artifacts", "--dry-run", env=migrate_env(s3, url))
    assert result.returncode == 2, result.stdout + result.stderr
    assert "runs.name: a value has 300 characters, the target column allows 250" in result.stderr


def test_source_from_a_newer_mlflow(s3, source, new_database, tmp_path):
    db = _copy_source(source, tmp_path)
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE alembic_version SET version_num = 'ffffffffffff'")
    _, url = new_database("newer")
    result = run_migrate(*_args(db, source["root"]), "--skip-artifacts", env=migrate_env(s3, url))
    assert result.returncode == 2, result.stdout + result.stderr
    assert "source schema revision ffffffffffff is unknown to the installed MLflow" in result.stderr


def test_arguments_are_checked(s3, source):
    result = run_migrate("--source", str(source["db"]), env=migrate_env(s3, "postgresql://u@127.0.0.1:1/x"))
    assert result.returncode == 2
    assert "give --artifact-root and --artifacts-destination, or --skip-artifacts" in result.stderr
    result = run_migrate("--source", str(source["db"]), "--skip-artifacts", env=dict(s3.env()))
    assert result.returncode == 2
    assert "no target database" in result.stderr


def test_moved_artifact_folder_is_detected(s3, source, new_database, tmp_path):
    """The folder was copied elsewhere: nothing in the database is under it. Say what is."""
    moved = tmp_path / "elsewhere" / "mlruns"
    shutil.copytree(source["root"], moved)
    _, url = new_database("moved")
    result = run_migrate(*_args(source["db"], moved), "--dry-run", env=migrate_env(s3, url))
    assert result.returncode == 2, result.stdout + result.stderr
    assert f"no stored artifact location is under {moved}" in result.stderr
    assert f"pass --recorded-artifact-root {source['root']}" in result.stderr
