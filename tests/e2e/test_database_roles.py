"""The servers sign in as their own least-privilege role, never as the schema's owner.

The boot step (images/mlflow/mlflow_boot.py) migrates as the owner (the superuser here, RDS's
master user in prod), creates `mlflow_server` with DML grants only, and drops the owner's
password before it execs the server. Proved on the shared dev topology, through the real client.
"""

from __future__ import annotations

import sys

import psycopg2
import pytest
from mlflow import MlflowClient
from psycopg2 import errors

from components.versions import MLFLOW_IMAGE_DIR
from images.mlflow import server_contract as contract
from testkit.postgres import LocalPostgres

from .helpers import server_environments

pytestmark = pytest.mark.e2e

# Statements the server's role must be refused: schema changes and table-wide wipes.
FORBIDDEN = {
    "drop a table": "DROP TABLE runs",
    "create a table": "CREATE TABLE intruder (id int)",
    "alter a table": "ALTER TABLE runs ADD COLUMN intruder int",
    "truncate": "TRUNCATE metrics",
    "create a role": "CREATE ROLE intruder",
    "create a database": "CREATE DATABASE intruder",
}


@pytest.fixture
def client(tracking):
    return MlflowClient()


def mlflow_sessions(stack) -> dict[str, set[str]]:
    """Who the MLflow servers' sessions are signed in as, by database (seen by the superuser)."""
    conn = stack.postgres.connect("postgres")
    try:
        with conn.cursor() as cursor:
            cursor.execute(
                "SELECT datname, usename FROM pg_stat_activity "
                "WHERE backend_type = 'client backend' AND pid <> pg_backend_pid() AND datname IS NOT NULL"
            )
            found: dict[str, set[str]] = {}
            for database, user in cursor.fetchall():
                found.setdefault(database, set()).add(user)
            return found
    finally:
        conn.close()


def test_every_server_session_is_the_limited_role(stack, client):
    experiment = client.create_experiment("roles-sessions")
    run = client.create_run(experiment)
    client.log_metric(run.info.run_id, "m", 1.0)
    client.set_terminated(run.info.run_id)

    sessions = mlflow_sessions(stack)
    database = stack.settings.database.name
    assert sessions.get(database), f"no session in {database}: {sessions}"
    assert sessions[database] == {contract.SERVER_DB_ROLE}, sessions


def server_connection(stack):
    return stack.postgres.connect(
        stack.settings.database.name, user=contract.SERVER_DB_ROLE, password=stack.db_password
    )


@pytest.mark.parametrize("what", sorted(FORBIDDEN))
def test_the_server_role_cannot_change_the_schema(stack, client, what):
    client.create_experiment(f"roles-forbidden-{what.replace(' ', '-')}")  # the schema exists
    conn = server_connection(stack)
    conn.autocommit = True  # CREATE DATABASE refuses to run inside a transaction block
    try:
        with conn.cursor() as cursor, pytest.raises(errors.InsufficientPrivilege):
            cursor.execute(FORBIDDEN[what])
    finally:
        conn.close()


def test_the_server_role_reads_and_writes_rows(stack, client):
    experiment = client.create_experiment("roles-dml")
    conn = server_connection(stack)
    try:
        with conn.cursor() as cursor:
            cursor.execute("SELECT name FROM experiments WHERE experiment_id = %s", (int(experiment),))
            assert cursor.fetchone() == ("roles-dml",)
            cursor.execute("UPDATE experiments SET name = name WHERE experiment_id = %s", (int(experiment),))
            assert cursor.rowcount == 1
    finally:
        conn.rollback()
        conn.close()


def test_the_owner_password_never_reaches_the_server_process(stack, client):
    """The boot step reads it, then execs the server without it: no variable, no value."""
    client.search_experiments()  # every server is up and has served

    processes = server_environments(stack)
    for pid, names, environ in processes:
        for secret in (contract.DB_OWNER_PASSWORD, contract.DB_MONITOR_PASSWORD):
            assert not {secret, f"{secret}_FILE"} & names, pid
        assert stack.db_owner_password not in environ, pid
        assert stack.db_monitor_password not in environ, pid
        # The server's own password is there: the check above can see a secret when it is.
        assert contract.DB_USER in names
    assert len(processes) >= len(stack.instances)


@pytest.fixture
def boot_module():
    sys.path.insert(0, str(MLFLOW_IMAGE_DIR))
    try:
        import mlflow_boot

        yield mlflow_boot
    finally:
        sys.path.remove(str(MLFLOW_IMAGE_DIR))


def test_the_monitor_role_reads_statistics_but_no_row(stack, client):
    """The exporter's role, made by the servers' boot step: pg_monitor's views, no MLflow table."""
    client.create_experiment("roles-monitor")
    conn = stack.postgres.connect(
        stack.settings.database.name, user=contract.MONITOR_DB_ROLE, password=stack.db_monitor_password
    )
    try:
        with conn.cursor() as cursor:
            cursor.execute("SELECT pg_has_role(current_user, 'pg_monitor', 'member'), rolsuper, rolcreaterole "
                           "FROM pg_roles WHERE rolname = current_user")  # fmt: skip
            assert cursor.fetchone() == (True, False, False)
            # What the exporter reads: other roles' sessions (pg_read_all_stats), sizes, settings.
            cursor.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE usename = %s AND query <> '<insufficient privilege>'",
                (contract.SERVER_DB_ROLE,),
            )
            assert cursor.fetchone()[0] >= 1
            cursor.execute("SELECT pg_database_size(current_database()) > 0")
            assert cursor.fetchone() == (True,)
            with pytest.raises(errors.InsufficientPrivilege):
                cursor.execute("SELECT name FROM experiments")
    finally:
        conn.close()


def test_the_role_password_never_appears_in_the_statement_log(boot_module):
    """RDS logs DDL (log_statement = ddl): CREATE/ALTER ROLE carry a SCRAM verifier, not the password."""
    import sqlalchemy
    from sqlalchemy.pool import NullPool

    password = "Pw" + "7" * 30
    with LocalPostgres(password="owner-pw-xyz", settings={"log_statement": "all"}) as pg:
        pg.create_database("mlflow")
        engine = sqlalchemy.create_engine(
            f"postgresql+psycopg2://postgres:owner-pw-xyz@{pg.host}:{pg.port}/mlflow", poolclass=NullPool
        )
        try:
            with engine.begin() as connection:
                connection.execute(sqlalchemy.text("CREATE TABLE runs (id serial PRIMARY KEY, name text)"))
            boot_module.ensure_server_role(engine, contract.SERVER_DB_ROLE, "first-" + password)
            boot_module.ensure_server_role(engine, contract.SERVER_DB_ROLE, password)  # the ALTER path
            boot_module.grant_server_access(engine, contract.SERVER_DB_ROLE)
        finally:
            engine.dispose()
        log = pg.process.log_text()
        assert "ROLE" in log and "SCRAM-SHA-256$" in log  # the statements were logged...
        assert password not in log and "first-" + password not in log  # ...without the password
        conn = psycopg2.connect(host=pg.host, port=pg.port, dbname="mlflow", user=contract.SERVER_DB_ROLE,
                                password=password)  # fmt: skip
        try:
            with conn.cursor() as cursor:
                cursor.execute("INSERT INTO runs (name) VALUES ('a') RETURNING id")  # sequence granted too
                assert cursor.fetchone() == (1,)
                with pytest.raises(errors.InsufficientPrivilege):
                    cursor.execute("CREATE TABLE intruder (id int)")
        finally:
            conn.close()


def test_a_monitor_role_left_by_an_earlier_boot_is_locked_when_no_exporter_is_configured(boot_module):
    """observability switched off: the boot step's disable_login makes the role NOLOGIN."""
    import sqlalchemy
    from sqlalchemy.pool import NullPool

    with LocalPostgres(password="owner-pw-xyz") as pg:
        engine = sqlalchemy.create_engine(
            f"postgresql+psycopg2://postgres:owner-pw-xyz@{pg.host}:{pg.port}/postgres", poolclass=NullPool
        )
        try:
            assert boot_module.disable_login(engine, contract.MONITOR_DB_ROLE) is False  # no such role: nothing
            boot_module.ensure_server_role(engine, contract.MONITOR_DB_ROLE, "monitor-pw-123")
            boot_module.grant_monitor_access(engine, contract.MONITOR_DB_ROLE)
            pg.connect("postgres", user=contract.MONITOR_DB_ROLE, password="monitor-pw-123").close()
            assert boot_module.disable_login(engine, contract.MONITOR_DB_ROLE) is True
            with pytest.raises(psycopg2.OperationalError, match="not permitted to log in"):
                pg.connect("postgres", user=contract.MONITOR_DB_ROLE, password="monitor-pw-123")
            # Switched on again: the boot step's ensure gives it LOGIN back.
            boot_module.ensure_server_role(engine, contract.MONITOR_DB_ROLE, "monitor-pw-456")
            pg.connect("postgres", user=contract.MONITOR_DB_ROLE, password="monitor-pw-456").close()
        finally:
            engine.dispose()
