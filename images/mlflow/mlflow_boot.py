"""Entrypoint of the MLflow image: prepare, then exec the MLflow server.

    python -m mlflow_boot mlflow server --host 0.0.0.0 ...   prepare, then exec the command
    python -m mlflow_boot healthcheck http://127.0.0.1:5000/health
    python -m mlflow_boot prepare                            prepare only (one-off tasks)
    python -m mlflow_boot upgrade                            upgrade the schemas and exit (every server stopped)
    python -m mlflow_boot schema-status                      print the schemas' state; exit code per state

Preparing means:
1. Secrets arrive as NAME_FILE (a Docker upload) or NAME (an ECS secret); both end up in this
   process's environment only, never on a command line or in the container's config.
2. The backend store URI is assembled from MLFLOW_DB_* and handed to `mlflow server` through
   MLFLOW_BACKEND_STORE_URI, so the password is not in argv.
3. The schema is created or upgraded (`mlflow db upgrade`) under a PostgreSQL advisory lock:
   replicas starting together migrate exactly once, the others wait and find it current.
   That is MLFLOW_BOOT_SCHEMA=migrate (the default; the dev stack). With `require-current` (prod)
   a schema that is not this image's head is never touched: the boot step refuses, so the server
   never starts (its health check fails) and the log names both revisions. An empty database is
   created in both modes. A schema newer than this image is refused in both modes.
   With MLFLOW_DB_OWNER_USER set (both stacks), this runs as the schema's owner, which then
   creates or updates the server's own role (MLFLOW_DB_USER: LOGIN, DML on MLflow's tables and
   sequences, no DDL); the owner's password is dropped from the environment before the exec, so
   the server process never holds it and every SQL session of the server is the limited role.
   With MLFLOW_DB_MONITOR_USER set too (dev with observability), the owner also creates or updates
   the metrics exporter's role the same way (LOGIN, pg_monitor, no table privilege); its password
   is dropped before the exec like the owner's. Without it, that role (if an earlier boot made it)
   may no longer sign in.
4. With MLFLOW_BOOT_AUTH_DB_NAME set (`--app-name basic-auth`), the auth database is created
   and migrated under the same lock (and granted to the server's role), and the auth app's ini
   is written to MLFLOW_AUTH_CONFIG_PATH. With MLFLOW_PLATFORM_AUTH_DECLARATION set (a secret:
   the stack's users, roles and passwords), MLflow's auth database is reconciled to it, under the
   same lock (auth_reconcile.py), and the declaration is dropped from the environment.
5. With MLFLOW_BOOT_CREATE_BUCKET set (the dev object store), the artifact bucket is created if missing,
   after waiting (bounded) for the object store to answer: after a reboot it may start later.
   With MLFLOW_BOOT_BUCKET_ENCRYPTION set too (`AES256`), its default encryption is set, every boot:
   the store encrypts each object it stores from then on, whichever client wrote it.

Standard library plus what the image installs (SQLAlchemy, psycopg2, boto3, mlflow) only.
"""

from __future__ import annotations

import configparser
import contextlib
import json
import logging
import os
import re
import shutil
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Mapping, MutableMapping
from typing import NamedTuple

from server_contract import (
    AUTH_DECLARATION,
    BOOT_SCHEMA,
    BUCKET_ENCRYPTION,
    DB_MONITOR_PASSWORD,
    DB_MONITOR_USER,
    DB_OWNER_PASSWORD,
    DB_OWNER_USER,
    DB_PASSWORD,
    DB_USER,
    EXPOSE_PROMETHEUS_FLAG,
    FILE_SUFFIX,
    MONITOR_DB_ROLE,
    SCHEMA_MIGRATE,
    SCHEMA_MODES,
    SCHEMA_REQUIRE_CURRENT,
    SCHEMA_STATUS_EXIT_CODES,
    SECRET_NAMES,
    SERVER_ROOT_PID,
    MissingSettings,
)
from server_contract import backend_store_uri as _backend_store_uri

# pg_advisory_lock key: any fixed 64-bit number, the same in every replica.
MIGRATION_LOCK_KEY = 0x6D6C666C6F77  # "mlflow"
DB_WAIT_SECONDS = float(os.environ.get("MLFLOW_BOOT_DB_WAIT_SECONDS", "120"))
# After a reboot the object store may start after this server: wait for it as for the database.
STORE_WAIT_SECONDS = float(os.environ.get("MLFLOW_BOOT_STORE_WAIT_SECONDS", "120"))

log = logging.getLogger("mlflow_boot")


class BootError(RuntimeError):
    """A clear, expected failure: printed without a traceback."""


def load_file_secrets(environ: MutableMapping[str, str]) -> None:
    """NAME_FILE=/path -> NAME=<contents>, for every known secret name."""
    for name in SECRET_NAMES:
        path = environ.get(f"{name}{FILE_SUFFIX}")
        if not path:
            continue
        try:
            with open(path, encoding="utf-8") as handle:
                environ[name] = handle.read().strip()
        except OSError as error:
            raise BootError(f"{name}{FILE_SUFFIX} points to {path}, which cannot be read: {error.strerror}") from None


def backend_store_uri(environ: Mapping[str, str], *, owner: bool = False) -> str:
    """postgresql+psycopg2://user:password@host:port/db?sslmode=... from MLFLOW_DB_* (server_contract);
    with `owner`, signed in as the schema's owner (MLFLOW_DB_OWNER_*)."""
    if environ.get("MLFLOW_BACKEND_STORE_URI") and not owner:
        return environ["MLFLOW_BACKEND_STORE_URI"]
    try:
        return _backend_store_uri(environ, owner=owner)
    except MissingSettings as error:
        raise BootError(f"{error} (or *_FILE for secrets)") from None


def owner_store_uri(environ: Mapping[str, str]) -> str | None:
    """The owner's URI where the roles are split (MLFLOW_DB_OWNER_USER set), else None."""
    if not environ.get(DB_OWNER_USER):
        return None
    if environ.get(DB_OWNER_USER) == environ.get(DB_USER):
        raise BootError(f"{DB_OWNER_USER} and {DB_USER} must name different roles: the server's is the limited one")
    return backend_store_uri(environ, owner=True)


def wait_for_database(uri: str, timeout: float = DB_WAIT_SECONDS):
    """An engine whose database answers, retrying while it starts."""
    import sqlalchemy
    from sqlalchemy.pool import NullPool

    engine = sqlalchemy.create_engine(uri, poolclass=NullPool)
    deadline = time.monotonic() + timeout
    while True:
        try:
            with engine.connect() as connection:
                connection.execute(sqlalchemy.text("SELECT 1"))
            return engine
        except sqlalchemy.exc.OperationalError as error:
            if time.monotonic() > deadline:
                reason = str(error.orig).strip().splitlines()[0] if error.orig else str(error)
                raise BootError(f"database not reachable after {timeout:.0f}s: {reason}") from None
            time.sleep(1)


@contextlib.contextmanager
def migration_lock(engine):
    """A cluster-wide lock: one replica migrates, the others wait, then find it current."""
    import sqlalchemy

    with engine.connect() as lock_connection:
        lock_connection.execute(sqlalchemy.text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
        try:
            yield
        finally:
            lock_connection.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK_KEY})
            lock_connection.commit()


class SchemaState(NamedTuple):
    """Where a database's schema stands against this image: `state` is "empty" (no MLflow
    tables), "current" (at this image's head), "behind" (a revision this image's migrations know:
    it can upgrade it) or "ahead" (a revision it does not know: written by a newer MLflow)."""

    state: str
    current: str | None
    head: str


def _compare(script, current: str | None, head: str) -> str:
    """ "current", "behind" or "ahead" for `current` in the alembic ScriptDirectory `script`."""
    from alembic.util import CommandError

    if current == head:
        return "current"
    if current is None:  # tables without a version row: older than alembic tracking
        return "behind"
    try:
        known = script.get_revision(current) is not None
    except CommandError:  # "Can't locate revision identified by ..." (ResolutionError is one)
        known = False
    return "behind" if known else "ahead"


def is_empty_database(engine) -> bool:
    """No table but alembic's own (what MLflow 3.17's `_is_empty_database` checks; older 3.x
    releases, which this module also runs in the upgrade tests, do not have that function)."""
    import sqlalchemy

    return all(t.startswith("alembic_") for t in sqlalchemy.inspect(engine).get_table_names())


def tracking_schema_state(engine) -> SchemaState:
    from alembic.script import ScriptDirectory
    from mlflow.store.db import utils as db_utils

    head = db_utils._get_latest_schema_revision()
    if is_empty_database(engine):
        return SchemaState("empty", None, head)
    current = db_utils._get_schema_version(engine)
    script = ScriptDirectory.from_config(db_utils._get_alembic_config(db_url=""))
    return SchemaState(_compare(script, current, head), current, head)


# The auth app's alembic version table (mlflow/server/auth/db/utils.py, migrate_if_needed).
AUTH_VERSION_TABLE = "alembic_version_auth"


def _auth_script():
    """The auth database's migrations, found without importing `mlflow.server.auth`: its package
    reads MLFLOW_AUTH_CONFIG_PATH (and connects) at import time."""
    import importlib.util
    from pathlib import Path

    from alembic.script import ScriptDirectory

    spec = importlib.util.find_spec("mlflow")
    assert spec and spec.submodule_search_locations
    return ScriptDirectory(str(Path(next(iter(spec.submodule_search_locations))) / "server/auth/db/migrations"))


def auth_schema_state(engine) -> SchemaState:
    import sqlalchemy
    from alembic.migration import MigrationContext

    script = _auth_script()
    head = script.get_current_head()
    tables = set(sqlalchemy.inspect(engine).get_table_names())
    if AUTH_VERSION_TABLE not in tables:
        # Auth tables without the version table: MLflow < 3.6 (migrate_if_needed stamps it).
        return SchemaState("behind" if "users" in tables else "empty", None, head)
    with engine.connect() as connection:
        current = MigrationContext.configure(
            connection, opts={"version_table": AUTH_VERSION_TABLE}
        ).get_current_revision()
    return SchemaState(_compare(script, current, head), current, head)


def check_schema(what: str, found: SchemaState, mode: str) -> None:
    """Refuse what this mode may not do with `found`; return when it may go on."""
    if found.state == "ahead":
        raise BootError(
            f"the {what} schema is at {found.current}, which this image's MLflow does not know (its head is "
            f"{found.head}): it was upgraded by a newer MLflow. Refusing to start: run the newer image, or "
            "restore the backup taken before the upgrade (docs/operations.md, Upgrading MLflow)"
        )
    if found.state == "behind" and mode == SCHEMA_REQUIRE_CURRENT:
        raise BootError(
            f"the {what} schema is at {found.current}, this image needs {found.head}; refusing to start "
            f"({BOOT_SCHEMA}={SCHEMA_REQUIRE_CURRENT}: servers never migrate a schema other servers may be "
            "writing to). Stop every server, back up, run `python -m mlflow_boot upgrade` once "
            "(docs/operations.md, Upgrading MLflow)"
        )


def migrate_schema(engine, mode: str = SCHEMA_MIGRATE) -> str:
    """Create or upgrade MLflow's schema (what `mlflow db upgrade` does), as `mode` allows.
    Call under the lock. Returns what happened: "created", "upgraded" or "current"."""
    from mlflow.store.db import utils as db_utils

    found = tracking_schema_state(engine)
    check_schema("tracking", found, mode)
    if found.state == "empty":
        log.info("empty database: creating the MLflow schema")
        db_utils._initialize_tables(engine)
        return "created"
    if found.state == "current":
        log.info("schema is current (%s)", found.head)
        return "current"
    log.info("upgrading schema %s -> %s", found.current, found.head)
    # One transaction (`engine.begin()` in _upgrade_db): on PostgreSQL a failed upgrade rolls back whole.
    db_utils._upgrade_db(engine)
    return "upgraded"


def with_database(uri: str, name: str) -> str:
    """The same server and credentials, another database."""
    from sqlalchemy.engine import make_url

    return make_url(uri).set(database=name).render_as_string(hide_password=False)


def ensure_database(engine, name: str) -> bool:
    """CREATE DATABASE `name` unless it exists. Returns True when it was created."""
    import sqlalchemy

    if not re.fullmatch(r"[a-z_][a-z0-9_]{0,62}", name):
        raise BootError(f"refusing to create database {name!r}: not a plain lowercase identifier")
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
        exists = connection.execute(
            sqlalchemy.text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": name}
        ).scalar()
        if exists:
            return False
        connection.execute(sqlalchemy.text(f'CREATE DATABASE "{name}"'))
    log.info("created database %s", name)
    return True


# What the server's role may do with MLflow's objects: read and write rows, draw ids. No DDL,
# no TRUNCATE, no REFERENCES/TRIGGER: a compromised or buggy server cannot drop or alter a table.
SERVER_TABLE_PRIVILEGES = "SELECT, INSERT, UPDATE, DELETE"
SERVER_SEQUENCE_PRIVILEGES = "USAGE, SELECT"


def ensure_server_role(engine, role: str, password: str) -> None:
    """Create the server's role (or the metrics exporter's), or bring it to `password` (LOGIN, no
    other attribute).

    The password travels as the SCRAM-SHA-256 verifier libpq computes (psycopg2's
    encrypt_password), never as text: `log_statement = ddl` (RDS's parameter group) logs every
    CREATE/ALTER ROLE statement, and a logged verifier does not let anyone sign in.
    """
    from psycopg2 import extensions, sql

    raw = engine.raw_connection()
    try:
        connection = raw.driver_connection
        verifier = extensions.encrypt_password(password, role, connection, "scram-sha-256")
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,))
            verb = "ALTER" if cursor.fetchone() else "CREATE"
            cursor.execute(
                sql.SQL(
                    verb + " ROLE {} WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION PASSWORD {}"
                ).format(sql.Identifier(role), sql.Literal(verifier))
            )
        connection.commit()
    finally:
        raw.close()
    log.info("database role %s: ready", role)


@contextlib.contextmanager
def _owner_cursor(engine):
    """A psycopg2 cursor on `engine`'s database and that database's name (an Identifier),
    committed when the block ends without an error."""
    from psycopg2 import sql

    raw = engine.raw_connection()
    try:
        connection = raw.driver_connection
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_database()")
            yield cursor, sql.Identifier(cursor.fetchone()[0])
        connection.commit()
    finally:
        raw.close()


def grant_server_access(engine, role: str) -> None:
    """In the database `engine` is connected to: the server's role may connect and use the rows
    of every table and sequence of the public schema, now and those the owner creates later
    (migrations of the next MLflow version), and may not create anything."""
    from psycopg2 import sql

    ident = sql.Identifier(role)
    with _owner_cursor(engine) as (cursor, database):
        for statement in (
            "GRANT CONNECT ON DATABASE {database} TO {role}",
            "GRANT USAGE ON SCHEMA public TO {role}",
            f"GRANT {SERVER_TABLE_PRIVILEGES} ON ALL TABLES IN SCHEMA public TO {{role}}",
            f"GRANT {SERVER_SEQUENCE_PRIVILEGES} ON ALL SEQUENCES IN SCHEMA public TO {{role}}",
            f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT {SERVER_TABLE_PRIVILEGES} ON TABLES TO {{role}}",
            f"ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT {SERVER_SEQUENCE_PRIVILEGES} ON SEQUENCES TO {{role}}",
        ):
            cursor.execute(sql.SQL(statement).format(database=database, role=ident))
        # PostgreSQL before 15 lets every role create in `public`; the owner takes that back.
        cursor.execute("SELECT has_schema_privilege(%s, 'public', 'CREATE')", (role,))
        if cursor.fetchone()[0]:
            cursor.execute("REVOKE CREATE ON SCHEMA public FROM PUBLIC")
            cursor.execute("SELECT has_schema_privilege(%s, 'public', 'CREATE')", (role,))
            if cursor.fetchone()[0]:
                raise BootError(f"role {role} may still create objects in schema public of {database}")


def grant_monitor_access(engine, role: str) -> None:
    """The metrics exporter's role: PostgreSQL's pg_monitor (statistics and settings views,
    database sizes), nothing on MLflow's tables; CONNECT to the database it signs in to."""
    from psycopg2 import sql

    ident = sql.Identifier(role)
    with _owner_cursor(engine) as (cursor, database):
        cursor.execute(sql.SQL("GRANT pg_monitor TO {}").format(ident))
        cursor.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(database, ident))


def disable_login(engine, role: str) -> bool:
    """`role` may no longer sign in (NOLOGIN), if it exists; whether it did."""
    from psycopg2 import sql

    with _owner_cursor(engine) as (cursor, _database):
        cursor.execute("SELECT rolcanlogin FROM pg_roles WHERE rolname = %s", (role,))
        row = cursor.fetchone()
        if not row or not row[0]:
            return False
        cursor.execute(sql.SQL("ALTER ROLE {} NOLOGIN").format(sql.Identifier(role)))
    log.info("database role %s: login disabled (no exporter configured)", role)
    return True


def prepare_auth(engine, uri: str, environ: Mapping[str, str], *, server_uri: str | None = None,
                 server_role: str | None = None, mode: str = SCHEMA_MIGRATE) -> None:  # fmt: skip
    """basic-auth: its own database, migrated here (under the lock) rather than by every worker,
    and the ini MLflow's auth app reads, with the credential cache on (10x faster logins).

    `engine`/`uri` are the migrating role's; with `server_role` the auth database is granted to
    it and the ini names `server_uri`'s credentials (what the server's workers sign in as)."""
    import sqlalchemy
    from sqlalchemy.pool import NullPool

    name = environ["MLFLOW_BOOT_AUTH_DB_NAME"]
    ensure_database(engine, name)
    auth_uri = with_database(uri, name)
    # First: importing mlflow.server.auth reads this file (MLFLOW_AUTH_CONFIG_PATH) at once.
    write_auth_config(environ["MLFLOW_AUTH_CONFIG_PATH"], with_database(server_uri or uri, name), environ)
    os.environ["MLFLOW_AUTH_CONFIG_PATH"] = environ["MLFLOW_AUTH_CONFIG_PATH"]
    from mlflow.server.auth.db import utils as auth_db_utils

    auth_engine = sqlalchemy.create_engine(auth_uri, poolclass=NullPool)
    try:
        check_schema("auth", auth_schema_state(auth_engine), mode)
        auth_db_utils.migrate_if_needed(auth_engine, "head")
        if server_role:
            grant_server_access(auth_engine, server_role)
    finally:
        auth_engine.dispose()
    if environ.get(AUTH_DECLARATION):
        # Still under the lock: with several replicas booting, one applies it, the others find
        # nothing to change.
        import auth_reconcile

        try:
            auth_reconcile.apply(
                auth_uri, environ[AUTH_DECLARATION], admin_username=environ.get("MLFLOW_AUTH_ADMIN_USERNAME", "admin")
            )
        except auth_reconcile.ReconcileError as error:
            raise BootError(f"auth declaration: {error}") from None


def write_auth_config(path: str, auth_uri: str, environ: Mapping[str, str]) -> None:
    config = configparser.ConfigParser(interpolation=None)
    config["mlflow"] = {
        # Least privilege: a user sees and touches only what was granted to them, or created
        # (its creator gets MANAGE). MLflow's own default, READ, shows every user every
        # experiment, run, artifact, trace and model.
        "default_permission": environ.get("MLFLOW_BOOT_AUTH_DEFAULT_PERMISSION", "NO_PERMISSIONS"),
        # MLflow reads this file with configparser's default interpolation: '%' must be doubled
        # (the URI is percent-encoded: sslrootcert=%2Fetc%2F..., quoted passwords).
        "database_uri": auth_uri.replace("%", "%%"),
        "admin_username": environ.get("MLFLOW_AUTH_ADMIN_USERNAME", "admin"),
        "authorization_function": "mlflow.server.auth:authenticate_request_basic_auth",
        "grant_default_workspace_access": "false",
        "auth_cache_ttl_seconds": environ.get("MLFLOW_BOOT_AUTH_CACHE_SECONDS", "60"),
        "auth_cache_max_size": "10000",
    }
    # The file holds the database password: owner-only, created that way (no window).
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        config.write(handle)


def s3_client(environ: Mapping[str, str], config=None):
    """The S3 client of the stores' settings in `environ`. The boot module's `config`: one
    attempt per call, short timeouts (it retries itself); other callers give their own."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3",
        endpoint_url=environ.get("MLFLOW_S3_ENDPOINT_URL"),
        region_name=environ.get("AWS_DEFAULT_REGION", "us-east-1"),
        # Static keys where the store has them (dev); None lets boto3 find the task role (AWS).
        aws_access_key_id=environ.get("AWS_ACCESS_KEY_ID"),
        aws_secret_access_key=environ.get("AWS_SECRET_ACCESS_KEY"),
        config=config or Config(connect_timeout=3, read_timeout=10, retries={"max_attempts": 1, "mode": "standard"}),
    )


# Answers of an object store that is up but not ready yet (MinIO: 503 "Server not initialized").
_STARTING_CODES = {"500", "502", "503", "504", "ServiceUnavailable", "XMinioServerNotInitialized", "SlowDown"}


def bucket_exists(client, bucket: str, timeout: float = STORE_WAIT_SECONDS) -> bool:
    """head_bucket, retried while the object store is unreachable or starting; False when missing."""
    from botocore.exceptions import ClientError, ConnectionClosedError, EndpointConnectionError, ReadTimeoutError

    deadline = time.monotonic() + timeout
    while True:
        try:
            client.head_bucket(Bucket=bucket)
            return True
        except ClientError as error:
            code = str(error.response.get("Error", {}).get("Code"))
            if code in ("404", "NoSuchBucket", "NotFound"):
                return False
            if code not in _STARTING_CODES:
                raise BootError(f"cannot check bucket {bucket!r}: {error}") from None
            reason = f"the object store answers {code}"
        except (EndpointConnectionError, ConnectionClosedError, ReadTimeoutError) as error:
            reason = str(error)
        if time.monotonic() > deadline:
            raise BootError(f"object store not reachable after {timeout:.0f}s: {reason}")
        log.info("waiting for the object store: %s", reason)
        time.sleep(1)


def ensure_bucket(bucket: str, environ: Mapping[str, str], timeout: float = STORE_WAIT_SECONDS) -> bool:
    """Create the bucket if missing (dev object stores). Returns True when it was created.

    A new bucket is private: no bucket policy, so no anonymous access.
    """
    from botocore.exceptions import ClientError

    client = s3_client(environ)
    if bucket_exists(client, bucket, timeout):
        return False
    try:
        client.create_bucket(Bucket=bucket)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") != "BucketAlreadyOwnedByYou":
            raise BootError(f"cannot create bucket {bucket!r}: {error}") from None
        return False
    log.info("created bucket %s", bucket)
    return True


def ensure_bucket_encryption(bucket: str, algorithm: str, environ: Mapping[str, str]) -> None:
    """Set the bucket's default server-side encryption (PutBucketEncryption replaces the whole
    configuration, so repeating it every boot is harmless). A store that cannot encrypt refuses:
    MinIO answers `KMSNotConfigured` without its KMS key. Objects stored before stay as they are."""
    from botocore.exceptions import ClientError

    rule = {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": algorithm}}
    try:
        s3_client(environ).put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": [rule]})
    except ClientError as error:
        raise BootError(f"cannot set the default encryption of bucket {bucket!r}: {error}") from None
    log.info("bucket %s encrypts new objects (%s)", bucket, algorithm)


def schema_mode(environ: Mapping[str, str]) -> str:
    mode = environ.get(BOOT_SCHEMA) or SCHEMA_MIGRATE
    if mode not in SCHEMA_MODES:
        raise BootError(f"{BOOT_SCHEMA}={mode!r}: expected one of {', '.join(SCHEMA_MODES)}")
    return mode


def prepare(environ: MutableMapping[str, str], *, mode: str | None = None, bucket: bool = True) -> str:
    """Everything before the server starts (module docstring); returns the schema's outcome.
    `mode` overrides MLFLOW_BOOT_SCHEMA (`upgrade` migrates); without `bucket` the object store
    is left alone (a one-off upgrade touches the databases only)."""
    mode = mode or schema_mode(environ)
    load_file_secrets(environ)
    uri = backend_store_uri(environ)
    owner_uri = owner_store_uri(environ)
    engine = wait_for_database(owner_uri or uri)
    server_role = environ[DB_USER] if owner_uri else None
    try:
        with migration_lock(engine):
            outcome = migrate_schema(engine, mode)
            if server_role:
                ensure_server_role(engine, server_role, environ[DB_PASSWORD])
                grant_server_access(engine, server_role)
            monitor_role = environ.get(DB_MONITOR_USER) if owner_uri else None
            if monitor_role:
                if not environ.get(DB_MONITOR_PASSWORD):
                    raise BootError(f"{DB_MONITOR_USER} is set without {DB_MONITOR_PASSWORD} (or its _FILE)")
                if monitor_role in (environ[DB_USER], environ[DB_OWNER_USER]):
                    raise BootError(f"{DB_MONITOR_USER} must name a role of its own, not the server's or the owner's")
                ensure_server_role(engine, monitor_role, environ[DB_MONITOR_PASSWORD])
                grant_monitor_access(engine, monitor_role)
            elif owner_uri:
                # Observability switched off: the exporter's role keeps no working password.
                disable_login(engine, MONITOR_DB_ROLE)
            if environ.get("MLFLOW_BOOT_AUTH_DB_NAME"):
                prepare_auth(engine, owner_uri or uri, environ, server_uri=uri, server_role=server_role, mode=mode)
    finally:
        engine.dispose()
    log.info("database schema: %s", outcome)
    # The server signs in as its own role; the owner's credentials stop here.
    # The users' passwords too (the auth declaration): applied, the server never needs them.
    for secret in (DB_OWNER_PASSWORD, DB_MONITOR_PASSWORD, AUTH_DECLARATION):
        for name in (secret, f"{secret}{FILE_SUFFIX}"):
            environ.pop(name, None)
    environ["MLFLOW_BACKEND_STORE_URI"] = uri
    name = environ.get("MLFLOW_BOOT_CREATE_BUCKET")
    if name and bucket:
        ensure_bucket(name, environ)
        if environ.get(BUCKET_ENCRYPTION):
            ensure_bucket_encryption(name, environ[BUCKET_ENCRYPTION], environ)
    return outcome


def schema_status(environ: MutableMapping[str, str]) -> int:
    """Print the tracking (and auth) schema's state as one JSON line; exit code per
    SCHEMA_STATUS_EXIT_CODES: "ahead" wins over "behind", "behind" over "current"; an empty
    tracking database is "empty". Reads only; as the owner where the roles are split."""
    import sqlalchemy
    from sqlalchemy.pool import NullPool

    load_file_secrets(environ)
    uri = owner_store_uri(environ) or backend_store_uri(environ)
    engine = wait_for_database(uri)
    try:
        states = {"tracking": tracking_schema_state(engine)}
        auth_name = environ.get("MLFLOW_BOOT_AUTH_DB_NAME")
        if auth_name and states["tracking"].state != "empty":
            with engine.connect() as connection:
                exists = connection.execute(
                    sqlalchemy.text("SELECT 1 FROM pg_database WHERE datname = :name"), {"name": auth_name}
                ).scalar()
            if exists:
                auth_engine = sqlalchemy.create_engine(with_database(uri, auth_name), poolclass=NullPool)
                try:
                    states["auth"] = auth_schema_state(auth_engine)
                finally:
                    auth_engine.dispose()
    finally:
        engine.dispose()
    found = {found.state for found in states.values()}
    if states["tracking"].state == "empty":
        overall = "empty"
    else:
        overall = next(state for state in ("ahead", "behind", "current") if state in found or state == "current")
    print(json.dumps({"state": overall, **{what: found._asdict() for what, found in states.items()}}))
    return SCHEMA_STATUS_EXIT_CODES[overall]


def healthcheck(url: str, timeout: float = 4.0) -> int:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (fixed local URL)
            return 0 if response.status == 200 else 1
    except (urllib.error.URLError, OSError) as error:
        print(f"unhealthy: {error}", file=sys.stderr)
        return 1


def reset_metrics_dir(argv: list[str]) -> str | None:
    """Empty the exporter's multiprocess dir named after --expose-prometheus, if any: the files
    of a previous run's workers (other pids) would otherwise be summed into every scrape."""
    if EXPOSE_PROMETHEUS_FLAG not in argv[:-1]:
        return None
    path = argv[argv.index(EXPOSE_PROMETHEUS_FLAG) + 1]
    shutil.rmtree(path, ignore_errors=True)
    os.makedirs(path, mode=0o700)
    return path


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s mlflow_boot %(levelname)s %(message)s")
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    if argv[0] == "healthcheck":
        return healthcheck(argv[1] if len(argv) > 1 else "http://127.0.0.1:5000/health")
    try:
        if argv[0] == "schema-status":
            return schema_status(os.environ)
        if argv[0] == "upgrade":
            # The one-off upgrade: every writer is stopped (docs/operations.md), so it migrates.
            log.info("schema upgrade: %s", prepare(os.environ, mode=SCHEMA_MIGRATE, bucket=False))
            return 0
        prepare(os.environ)  # os.environ: the exec'd server inherits what was prepared
    except BootError as error:
        log.error("%s", error)
        return 1
    if argv[0] == "prepare":
        return 0
    reset_metrics_dir(argv)
    os.environ[SERVER_ROOT_PID] = str(os.getpid())  # exec keeps the pid: the server's root
    os.execvp(argv[0], argv)
    return 1  # not reached


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
