"""Entrypoint of the MLflow image: prepare, then exec the MLflow server.

    python -m mlflow_boot mlflow server --host 0.0.0.0 ...   prepare, then exec the command
    python -m mlflow_boot healthcheck http://127.0.0.1:5000/health
    python -m mlflow_boot prepare                            prepare only (one-off tasks)

Preparing means:
1. Secrets arrive as NAME_FILE (a Docker upload) or NAME (an ECS secret); both end up in this
   process's environment only, never on a command line or in the container's config.
2. The backend store URI is assembled from MLFLOW_DB_* and handed to `mlflow server` through
   MLFLOW_BACKEND_STORE_URI, so the password is not in argv.
3. The schema is created or upgraded (`mlflow db upgrade`) under a PostgreSQL advisory lock:
   replicas starting together migrate exactly once, the others wait and find it current.
4. With MLFLOW_BOOT_CREATE_BUCKET set (the dev MinIO), the artifact bucket is created if missing.

Standard library plus what the image installs (SQLAlchemy, psycopg2, boto3, mlflow) only.
"""

from __future__ import annotations

import logging
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

SECRET_NAMES = ("MLFLOW_DB_PASSWORD", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "MLFLOW_FLASK_SERVER_SECRET_KEY")
# pg_advisory_lock key: any fixed 64-bit number, the same in every replica.
MIGRATION_LOCK_KEY = 0x6D6C666C6F77  # "mlflow"
DB_WAIT_SECONDS = float(os.environ.get("MLFLOW_BOOT_DB_WAIT_SECONDS", "120"))

log = logging.getLogger("mlflow_boot")


class BootError(RuntimeError):
    """A clear, expected failure: printed without a traceback."""


def load_file_secrets(environ: dict[str, str]) -> None:
    """NAME_FILE=/path -> NAME=<contents>, for every known secret name."""
    for name in SECRET_NAMES:
        path = environ.get(f"{name}_FILE")
        if not path:
            continue
        try:
            with open(path, encoding="utf-8") as handle:
                environ[name] = handle.read().strip()
        except OSError as error:
            raise BootError(f"{name}_FILE points to {path}, which cannot be read: {error.strerror}") from None


def backend_store_uri(environ: dict[str, str]) -> str:
    """postgresql+psycopg2://user:password@host:port/db?sslmode=... from MLFLOW_DB_*."""
    if environ.get("MLFLOW_BACKEND_STORE_URI"):
        return environ["MLFLOW_BACKEND_STORE_URI"]
    missing = [k for k in ("MLFLOW_DB_HOST", "MLFLOW_DB_NAME", "MLFLOW_DB_USER", "MLFLOW_DB_PASSWORD") if not environ.get(k)]
    if missing:
        raise BootError(f"missing database settings: {', '.join(missing)} (or *_FILE for secrets)")
    user = urllib.parse.quote(environ["MLFLOW_DB_USER"], safe="")
    password = urllib.parse.quote(environ["MLFLOW_DB_PASSWORD"], safe="")
    host = environ["MLFLOW_DB_HOST"]
    port = environ.get("MLFLOW_DB_PORT", "5432")
    query = {"sslmode": environ.get("MLFLOW_DB_SSLMODE", "prefer")}
    if environ.get("MLFLOW_DB_SSLROOTCERT"):
        query["sslrootcert"] = environ["MLFLOW_DB_SSLROOTCERT"]
    return (
        f"postgresql+psycopg2://{user}:{password}@{host}:{port}/{environ['MLFLOW_DB_NAME']}"
        f"?{urllib.parse.urlencode(query)}"
    )


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


def migrate_schema(engine) -> str:
    """Create or upgrade MLflow's schema once, under a cluster-wide advisory lock.

    Returns what happened: "created", "upgraded" or "current".
    """
    import sqlalchemy
    from mlflow.store.db import utils as db_utils

    with engine.connect() as lock_connection:
        lock_connection.execute(sqlalchemy.text("SELECT pg_advisory_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
        try:
            if db_utils._is_empty_database(engine):
                log.info("empty database: creating the MLflow schema")
                db_utils._initialize_tables(engine)
                return "created"
            head = db_utils._get_latest_schema_revision()
            current = db_utils._get_schema_version(engine)
            if current == head:
                log.info("schema is current (%s)", head)
                return "current"
            log.info("upgrading schema %s -> %s", current, head)
            db_utils._upgrade_db(engine)
            return "upgraded"
        finally:
            lock_connection.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:key)"), {"key": MIGRATION_LOCK_KEY})
            lock_connection.commit()


def ensure_bucket(bucket: str, environ: dict[str, str]) -> bool:
    """Create the bucket if missing (dev MinIO). Returns True when it was created.

    A new bucket is private: no bucket policy, so no anonymous access.
    """
    import boto3
    from botocore.exceptions import ClientError

    client = boto3.client(
        "s3",
        endpoint_url=environ.get("MLFLOW_S3_ENDPOINT_URL"),
        region_name=environ.get("AWS_DEFAULT_REGION", "us-east-1"),
    )
    try:
        client.head_bucket(Bucket=bucket)
        return False
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") not in ("404", "NoSuchBucket", "NotFound"):
            raise BootError(f"cannot check bucket {bucket!r}: {error}") from None
    try:
        client.create_bucket(Bucket=bucket)
    except ClientError as error:
        if error.response.get("Error", {}).get("Code") != "BucketAlreadyOwnedByYou":
            raise BootError(f"cannot create bucket {bucket!r}: {error}") from None
        return False
    log.info("created bucket %s", bucket)
    return True


def prepare(environ: dict[str, str]) -> None:
    load_file_secrets(environ)
    uri = backend_store_uri(environ)
    engine = wait_for_database(uri)
    try:
        outcome = migrate_schema(engine)
    finally:
        engine.dispose()
    log.info("database schema: %s", outcome)
    environ["MLFLOW_BACKEND_STORE_URI"] = uri
    bucket = environ.get("MLFLOW_BOOT_CREATE_BUCKET")
    if bucket:
        ensure_bucket(bucket, environ)


def healthcheck(url: str, timeout: float = 4.0) -> int:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (fixed local URL)
            return 0 if response.status == 200 else 1
    except (urllib.error.URLError, OSError) as error:
        print(f"unhealthy: {error}", file=sys.stderr)
        return 1


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s mlflow_boot %(levelname)s %(message)s")
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    if argv[0] == "healthcheck":
        return healthcheck(argv[1] if len(argv) > 1 else "http://127.0.0.1:5000/health")
    try:
        prepare(os.environ)  # os.environ: the exec'd server inherits what was prepared
    except BootError as error:
        log.error("%s", error)
        return 1
    if argv[0] == "prepare":
        return 0
    os.execvp(argv[0], argv)
    return 1  # not reached


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
