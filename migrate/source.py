"""The source SQLite file: checked, then snapshotted; everything after works on the snapshot.

The user's file is opened read-only (SQLite `mode=ro`) and copied with SQLite's online
backup API, which gives a consistent copy even while something else writes to it.
"""

from __future__ import annotations

import os
import sqlite3
from dataclasses import dataclass
from pathlib import Path

from migrate.errors import MigrationError
from migrate.identifiers import quote_ident
from migrate.s3 import s3_problem, split_s3_url

SQLITE_HEADER = b"SQLite format 3\x00"


@dataclass(frozen=True)
class Snapshot:
    path: Path
    revision: str


def _check_file(path: Path) -> None:
    if not path.exists():
        raise MigrationError(f"source database not found: {path}")
    if not path.is_file():
        raise MigrationError(f"source database is not a regular file: {path}")
    try:
        with open(path, "rb") as handle:
            header = handle.read(len(SQLITE_HEADER))
    except OSError as error:
        raise MigrationError(f"cannot read source database {path}: {error.strerror}") from None
    if header != SQLITE_HEADER:
        raise MigrationError(f"source is not a SQLite database (bad file header): {path}")


def download_source(url: str, work_dir: Path, client) -> Path:
    """s3://bucket/key -> a local file in `work_dir` (a one-off task has no other way in)."""
    bucket, key = split_s3_url(url)
    target = work_dir / "source-download.db"
    try:
        client.download_file(bucket, key, str(target))
    except Exception as error:
        raise MigrationError(f"cannot fetch the source database {url}: {s3_problem(error, bucket)}") from None
    return target


def snapshot_source(path: str | os.PathLike[str], work_dir: Path) -> Snapshot:
    """Copy the source into `work_dir` and check the copy; the original is never written."""
    source = Path(path).expanduser().resolve()
    _check_file(source)
    target = work_dir / "source-snapshot.db"
    try:
        original = sqlite3.connect(f"{source.as_uri()}?mode=ro", uri=True)
        try:
            copy = sqlite3.connect(target)
            try:
                original.backup(copy)
            finally:
                copy.close()
        finally:
            original.close()
    except sqlite3.DatabaseError as error:
        raise MigrationError(f"source database cannot be read ({error}): {source}") from None
    with sqlite3.connect(target) as conn:
        try:
            problems = [row[0] for row in conn.execute("PRAGMA quick_check")]
        except sqlite3.DatabaseError as error:
            raise MigrationError(f"source database is corrupt ({error}): {source}") from None
        if problems != ["ok"]:
            raise MigrationError(f"source database is corrupt: {source}: " + "; ".join(problems[:5]))
        tables = set(sqlite_tables(conn))
        if AUTH_TABLES <= tables and "experiments" not in tables:
            raise MigrationError(BASIC_AUTH_REFUSAL.format(source=source))
        if "alembic_version" not in tables or "experiments" not in tables:
            raise MigrationError(
                f"source is a SQLite database but not an MLflow tracking database "
                f"(no alembic_version/experiments tables): {source}"
            )
        row = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    if not row:
        raise MigrationError(f"source MLflow database has no schema revision recorded: {source}")
    return Snapshot(path=target, revision=row[0])


# MLflow's basic-auth app keeps users and grants in a database of its own (basic_auth.db).
AUTH_TABLES = {"users", "experiment_permissions", "registered_model_permissions"}
BASIC_AUTH_REFUSAL = (
    "{source} is MLflow's basic-auth database (users and permissions), not a tracking database; "
    "this tool does not migrate it. The platform's server creates its own auth database with its "
    "admin (the password the stack generated), and an old users table would clash with that admin "
    "row. Migrate the tracking database (mlflow.db) here, then recreate the users and their grants "
    "through MLflow's auth API as the platform admin (mlflow.server.auth.client.AuthServiceClient: "
    "create_user, grant_user_permission); see docs/migrate.md, 'Basic-auth users'."
)


def sqlite_tables(conn: sqlite3.Connection) -> list[str]:
    rows = conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
    )
    return [name for (name,) in rows]


def sqlite_columns(conn: sqlite3.Connection, table: str) -> list[str]:
    return [row[1] for row in conn.execute(f"PRAGMA table_info({quote_ident(table)})")]


def sqlite_sequences(conn: sqlite3.Connection) -> dict[str, int]:
    """AUTOINCREMENT high-water marks: ids SQLite will never hand out again."""
    exists = conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'sqlite_sequence'").fetchone()
    if not exists:
        return {}
    return {name: int(seq) for name, seq in conn.execute("SELECT name, seq FROM sqlite_sequence")}


def row_counts(conn: sqlite3.Connection, tables: list[str]) -> dict[str, int]:
    return {t: conn.execute(f"SELECT count(*) FROM {quote_ident(t)}").fetchone()[0] for t in tables}


def foreign_key_orphans(conn: sqlite3.Connection) -> dict[tuple[str, str], int]:
    """(child table, parent table) -> rows pointing at a missing parent.

    SQLite does not enforce foreign keys unless asked; PostgreSQL does, so such rows
    would abort the copy half-way. Found here, they are reported up front instead.
    """
    found: dict[tuple[str, str], int] = {}
    for table, _rowid, parent, _fk in conn.execute("PRAGMA foreign_key_check"):
        found[(table, parent)] = found.get((table, parent), 0) + 1
    return found
