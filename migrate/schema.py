"""Schema alignment: both sides at the same MLflow (alembic) revision before any row moves.

The target schema is made by MLflow itself (what `mlflow db upgrade` runs), never by us, so
it has every index and constraint. The source snapshot is upgraded to the target's revision
with MLflow's own migrations. Everything about the target's tables afterwards (column types,
primary keys, foreign keys) is read from PostgreSQL's catalog.
"""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy

from migrate.errors import MigrationError

log = logging.getLogger("migrate")

# The key images/mlflow/mlflow_boot.py locks while it migrates: a server starting while we
# create the schema waits for us instead of migrating the same database at the same time.
MIGRATION_LOCK_KEY = 0x6D6C666C6F77

# Rows a fresh MLflow writes on its own: the migrations add the "default" workspace, a
# server's first start adds experiment 0 "Default". A target holding only these is empty.
BOOTSTRAP_ROWS = {"workspaces": "name = 'default'", "experiments": "experiment_id = 0"}
# Coordination rows of a running server (leases, locks): never user data.
RUNTIME_TABLES = frozenset({"scheduler_leases", "job_locks"})
NOT_COPIED = frozenset({"alembic_version"})


# -- revisions ---------------------------------------------------------------------------


def _script():
    from alembic.script import ScriptDirectory
    from mlflow.store.db.utils import _get_alembic_config

    return ScriptDirectory.from_config(_get_alembic_config(""))


def head_revision() -> str:
    from mlflow.store.db.utils import _get_latest_schema_revision

    return _get_latest_schema_revision()


def ancestors(revision: str) -> set[str]:
    """`revision` and every revision below it, per this MLflow's migration scripts."""
    script = _script()
    seen: set[str] = set()
    todo = [revision]
    while todo:
        rev = todo.pop()
        if rev in seen:
            continue
        seen.add(rev)
        down = script.get_revision(rev).down_revision
        if down is None:
            continue
        todo.extend(down if isinstance(down, tuple) else [down])
    return seen


def is_known(revision: str) -> bool:
    try:
        return _script().get_revision(revision) is not None
    except Exception:  # alembic's ResolutionError and friends: "no such revision"
        return False


def _mlflow_version() -> str:
    import mlflow

    return mlflow.__version__


def check_revisions(source_rev: str, target_rev: str) -> None:
    """Fail unless the source can be upgraded to exactly the target's revision."""
    for side, rev in (("source", source_rev), ("target", target_rev)):
        if not is_known(rev):
            raise MigrationError(
                f"the {side} schema revision {rev} is unknown to the installed MLflow "
                f"{_mlflow_version()}: it was written by a newer MLflow. Run this migration with "
                f"the MLflow version of the server (pip install mlflow==<server version>)."
            )
    if source_rev not in ancestors(target_rev):
        raise MigrationError(
            f"the source schema ({source_rev}) is newer than the target's ({target_rev}); "
            "upgrade the target first (`mlflow db upgrade`, or start the newer server once)."
        )


def align_source(snapshot: Path, revision: str) -> None:
    """Upgrade the snapshot (never the user's file) to `revision` with MLflow's migrations."""
    from alembic import command
    from mlflow.store.db.utils import _get_alembic_config

    engine = sqlalchemy.create_engine(f"sqlite:///{snapshot}")
    try:
        config = _get_alembic_config(str(engine.url))
        with engine.begin() as connection:
            config.attributes["connection"] = connection
            command.upgrade(config, revision)
    except Exception as error:
        raise MigrationError(f"upgrading a copy of the source schema to {revision} failed: {error}") from error
    finally:
        engine.dispose()
    with sqlite3.connect(snapshot) as conn:
        now = conn.execute("SELECT version_num FROM alembic_version").fetchone()[0]
    if now != revision:
        raise MigrationError(f"source copy is at {now} after upgrading, expected {revision}")


# -- the target --------------------------------------------------------------------------


@dataclass
class Column:
    name: str
    type_name: str  # pg_type.typname: bool, int8, float8, varchar, json, ...
    sql_type: str  # format_type(): "character varying(250)", for casts
    max_length: int | None


@dataclass
class Table:
    name: str
    columns: list[Column] = field(default_factory=list)
    primary_key: list[str] = field(default_factory=list)
    parents: set[str] = field(default_factory=set)

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)


@dataclass
class TargetState:
    tables: set[str]
    revision: str | None

    @property
    def has_schema(self) -> bool:
        return self.revision is not None and "experiments" in self.tables


def inspect_target(engine: sqlalchemy.engine.Engine) -> TargetState:
    with engine.connect() as conn:
        tables = set(sqlalchemy.inspect(conn).get_table_names())
        revision = None
        if "alembic_version" in tables:
            revision = conn.execute(sqlalchemy.text("SELECT version_num FROM alembic_version")).scalar()
    if revision is None and "experiments" in tables:
        raise MigrationError("the target has MLflow tables but no alembic revision: not a database MLflow made")
    return TargetState(tables=tables, revision=revision)


def create_target_schema(engine: sqlalchemy.engine.Engine) -> None:
    """Create MLflow's schema exactly as `mlflow db upgrade` does on an empty database."""
    from mlflow.store.db import utils as db_utils

    with engine.connect() as lock:
        lock.execute(sqlalchemy.text("SELECT pg_advisory_lock(:k)"), {"k": MIGRATION_LOCK_KEY})
        try:
            state = inspect_target(engine)
            if not state.has_schema:
                # mlflow db upgrade's own branch for an empty database; other tables
                # (e.g. basic-auth's) may share the database, so we do not ask it "empty?".
                db_utils._initialize_tables(engine)
        finally:
            lock.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:k)"), {"k": MIGRATION_LOCK_KEY})
            lock.commit()


_CATALOG_COLUMNS = """
SELECT c.relname, a.attname, t.typname, format_type(a.atttypid, a.atttypmod),
       CASE WHEN t.typname IN ('varchar', 'bpchar') AND a.atttypmod > 4 THEN a.atttypmod - 4 END
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_type t ON t.oid = a.atttypid
WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p')
  AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
ORDER BY c.relname, a.attnum
"""

_CATALOG_CONSTRAINTS = """
SELECT c.relname, k.contype, p.relname,
       ARRAY(SELECT a.attname FROM unnest(k.conkey) WITH ORDINALITY AS u(num, i)
             JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = u.num ORDER BY u.i)
FROM pg_constraint k
JOIN pg_class c ON c.oid = k.conrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_class p ON p.oid = k.confrelid
WHERE n.nspname = current_schema() AND k.contype IN ('p', 'f')
"""


def target_catalog(cursor) -> dict[str, Table]:
    """Tables of the target's current schema, from pg_catalog (one query each, no reflection)."""
    tables: dict[str, Table] = {}
    cursor.execute(_CATALOG_COLUMNS)
    for table, column, type_name, sql_type, max_length in cursor.fetchall():
        tables.setdefault(table, Table(table)).columns.append(Column(column, type_name, sql_type, max_length))
    cursor.execute(_CATALOG_CONSTRAINTS)
    for table, kind, parent, columns in cursor.fetchall():
        if table not in tables:
            continue
        if kind == "p":
            tables[table].primary_key = list(columns)
        elif parent != table:
            tables[table].parents.add(parent)
    return tables


def foreign_key_order(tables: dict[str, Table], names: set[str]) -> list[str]:
    """`names` with every parent before its children (ties alphabetical, for stable runs)."""
    pending = {n: {p for p in tables[n].parents if p in names} for n in names}
    order: list[str] = []
    while pending:
        ready = sorted(n for n, parents in pending.items() if not parents)
        if not ready:
            raise MigrationError(f"foreign keys form a cycle among: {', '.join(sorted(pending))}")
        for n in ready:
            order.append(n)
            del pending[n]
        for parents in pending.values():
            parents.difference_update(ready)
    return order


def user_rows(cursor, names: set[str]) -> dict[str, int]:
    """Rows in the target that a fresh MLflow would not have made itself."""
    from psycopg2 import sql

    found = {}
    for name in sorted(names - RUNTIME_TABLES - NOT_COPIED):
        query = sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(name))
        if name in BOOTSTRAP_ROWS:
            query += sql.SQL(" WHERE NOT (" + BOOTSTRAP_ROWS[name] + ")")
        cursor.execute(query)
        count = cursor.fetchone()[0]
        if count:
            found[name] = count
    return found
