"""Where the target database URL comes from, and a connection that fails clearly.

Order: --target-url, then MLFLOW_MIGRATE_TARGET_URL, then the MLFLOW_DB_* variables the
platform's server task already has (so a one-off task with the server's task definition
needs no extra secret). A URL without a password lets libpq use PGPASSWORD or ~/.pgpass.
"""

from __future__ import annotations

import os

import sqlalchemy
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from images.mlflow import server_contract as contract
from migrate.errors import MigrationError, mask_url, redact

ENV_URL = "MLFLOW_MIGRATE_TARGET_URL"


def _secret(environ, name: str) -> str | None:
    path = environ.get(f"{name}_FILE")
    if path:
        try:
            with open(path, encoding="utf-8") as handle:
                return handle.read().strip()
        except OSError as error:
            raise MigrationError(f"{name}_FILE points to {path}, which cannot be read: {error.strerror}") from None
    return environ.get(name)


def load_file_secrets(environ=os.environ) -> None:
    """AWS_ACCESS_KEY_ID_FILE etc. -> the variables boto3 reads: inside the platform's dev
    containers secrets are files (NAME_FILE), as images/mlflow/mlflow_boot.py expects."""
    for name in (contract.S3_ACCESS_KEY_ID, contract.S3_SECRET_ACCESS_KEY):
        if not environ.get(name) and environ.get(f"{name}_FILE"):
            environ[name] = _secret(environ, name)


def url_from_platform_env(environ) -> str | None:
    """postgresql://... from MLFLOW_DB_*, built by the image's own contract (server_contract).

    As the schema's owner where the platform splits the roles (MLFLOW_DB_OWNER_USER): the
    migration creates the schema and resets sequences, which the servers' own role may not.
    """
    if not environ.get(contract.DB_HOST):
        return None
    owner = bool(environ.get(contract.DB_OWNER_USER))
    secret_name = contract.DB_OWNER_PASSWORD if owner else contract.DB_PASSWORD
    settings = dict(environ)
    password = _secret(environ, secret_name)
    if password:
        settings[secret_name] = password
    try:
        return contract.backend_store_uri(settings, password_required=False, owner=owner)
    except contract.MissingSettings as error:
        raise MigrationError(f"{contract.DB_HOST} is set, but: {error}") from None


def resolve_url(flag: str | None, environ=os.environ) -> tuple[str, str]:
    """(url, where it came from)."""
    if flag:
        return normalize(flag), "--target-url"
    if environ.get(ENV_URL):
        return normalize(environ[ENV_URL]), ENV_URL
    from_platform = url_from_platform_env(environ)
    if from_platform:
        return normalize(from_platform), "MLFLOW_DB_*"
    raise MigrationError(f"no target database: pass --target-url or set {ENV_URL} (or MLFLOW_DB_*)")


def normalize(url: str) -> str:
    """Any PostgreSQL spelling -> postgresql+psycopg2://, the driver we copy with."""
    try:
        parsed = make_url(url)
    except Exception:
        raise MigrationError("the target URL cannot be parsed (expected postgresql://user@host:port/db)") from None
    if parsed.get_backend_name() not in ("postgresql", "postgres"):
        raise MigrationError(f"the target must be PostgreSQL, got {parsed.get_backend_name()}:// ({mask_url(url)})")
    return parsed.set(drivername="postgresql+psycopg2").render_as_string(hide_password=False)


def password_of(url: str) -> str | None:
    return make_url(url).password


def connect(url: str, timeout: int = 10) -> sqlalchemy.engine.Engine:
    """An engine whose server answered; a clear, password-free error otherwise."""
    engine = sqlalchemy.create_engine(
        url,
        poolclass=NullPool,
        connect_args={"connect_timeout": timeout, "application_name": "mlflow-migrate"},
    )
    try:
        with engine.connect() as conn:
            conn.execute(sqlalchemy.text("SELECT 1"))
    except sqlalchemy.exc.SQLAlchemyError as error:
        engine.dispose()
        lines = str(getattr(error, "orig", None) or error).strip().splitlines()
        reason = lines[0] if lines else type(error).__name__
        raise MigrationError(
            f"cannot connect to the target database {mask_url(url)}: {redact(reason, password_of(url))}"
        ) from None
    return engine
