"""The contract between the MLflow image and whatever runs it: Docker, ECS, the end-to-end kit
and the migration tool. Standard library only: the image imports it as `server_contract`
(PYTHONPATH=/app), the repo as `images.mlflow.server_contract`.

One home for each fact both sides must agree on: the port and health path, the environment
names (and which of them are secrets), the database's port, and how the database URI is built.
"""

from __future__ import annotations

import base64
import urllib.parse
from collections.abc import Mapping
from types import MappingProxyType

SERVER_PORT = 5000
HEALTH_PATH = "/health"
# MLflow's Prometheus exporter (--expose-prometheus): scraped on the private network only;
# the proxy refuses it (components/specs/nginx.py).
METRICS_PATH = "/metrics"
EXPOSE_PROMETHEUS_FLAG = "--expose-prometheus"
# Under the scratch dir: the exporter's multiprocess files, one set per worker pid.
METRICS_SUBDIR = "prometheus"
# Our own series beside MLflow's (images/mlflow/request_metrics.py), by route template.
METRIC_REQUESTS = "mlflow_platform_http_requests"
METRIC_LATENCY = "mlflow_platform_http_request_duration_seconds"
METRIC_REQUEST_BYTES = "mlflow_platform_http_request_body_bytes"
METRIC_RESPONSE_BYTES = "mlflow_platform_http_response_body_bytes"
METRIC_MEMORY = "mlflow_platform_server_memory_pss_bytes"
METRIC_PROCESSES = "mlflow_platform_server_processes"
# Latency histogram buckets, seconds (up to two minutes for large artifact transfers); the
# proxy's histograms (components/specs/proxy_metrics.py) use the same, so the two compare.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0)
# The boot step's pid, which it execs into `mlflow server`: the root of the tree METRIC_MEMORY sums.
SERVER_ROOT_PID = "MLFLOW_PLATFORM_SERVER_PID"
POSTGRES_PORT = 5432

# Where the database is: plain settings.
DB_HOST = "MLFLOW_DB_HOST"
DB_PORT = "MLFLOW_DB_PORT"
DB_NAME = "MLFLOW_DB_NAME"
DB_USER = "MLFLOW_DB_USER"
# The role that owns the schema (the PostgreSQL superuser, RDS's master user): the boot step
# signs in as it to migrate and to create the server's own role, then the server runs as DB_USER.
DB_OWNER_USER = "MLFLOW_DB_OWNER_USER"
# The metrics exporter's own role (pg_monitor, no table access), where a stack runs one (dev with
# observability.enabled): created by the boot step as DB_OWNER_USER, like the server's role.
DB_MONITOR_USER = "MLFLOW_DB_MONITOR_USER"
DB_SSLMODE = "MLFLOW_DB_SSLMODE"
DB_SSLROOTCERT = "MLFLOW_DB_SSLROOTCERT"

# Secrets: given as NAME_FILE (a file, Docker) or NAME (an ECS secret), never on a command line.
DB_PASSWORD = "MLFLOW_DB_PASSWORD"
DB_OWNER_PASSWORD = "MLFLOW_DB_OWNER_PASSWORD"
DB_MONITOR_PASSWORD = "MLFLOW_DB_MONITOR_PASSWORD"
S3_ACCESS_KEY_ID = "AWS_ACCESS_KEY_ID"
S3_SECRET_ACCESS_KEY = "AWS_SECRET_ACCESS_KEY"
AUTH_ADMIN_PASSWORD = "MLFLOW_AUTH_ADMIN_PASSWORD"
FLASK_SECRET_KEY = "MLFLOW_FLASK_SERVER_SECRET_KEY"
# Not an environment name: the key of a declared user's generated password in the lengths below.
AUTH_USER_PASSWORD = "auth.users.*.password"
# MLflow's own encryption keys, read from the environment by the server:
# - the AI Gateway wraps each stored provider API key with a KEK derived (PBKDF2) from this
#   passphrase (mlflow/utils/crypto.py, KEKManager); unset, MLflow uses a passphrase printed in
#   its source, so anyone with the database could decrypt the keys.
CRYPTO_KEK_PASSPHRASE = "MLFLOW_CRYPTO_KEK_PASSPHRASE"
# - webhook signing secrets are stored Fernet-encrypted with this key
#   (mlflow/store/model_registry/dbmodels/models.py, EncryptedString); unset, every process
#   draws a random one, so secrets written by one worker are unreadable by the others.
WEBHOOK_ENCRYPTION_KEY = "MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY"
ENCRYPTION_KEY_NAMES = (CRYPTO_KEK_PASSPHRASE, WEBHOOK_ENCRYPTION_KEY)
# The server jobs' queue (MLflow's Huey on Redis), read by MLflow itself from the environment
# only (no *_FILE of its own): the whole redis:// or rediss:// URL, password included, is the secret.
JOB_REDIS_URL = "MLFLOW_SERVER_JOB_HUEY_REDIS_URL"
# basic-auth: the stack's users and roles as JSON, with the users' passwords (a secret): applied
# by the boot step (images/mlflow/auth_reconcile.py) and dropped from the environment before the
# server starts. The roles whose members may promote models are plain (promotion_guard.py).
AUTH_DECLARATION = "MLFLOW_PLATFORM_AUTH_DECLARATION"
PROMOTER_ROLES = "MLFLOW_PLATFORM_PROMOTER_ROLES"
# What marks the platform's own roles in MLflow's auth database (never reword it: roles with the
# old text would look foreign to the next deploy, which then refuses to take them over) (and so its users: each is a
# member of its own `mlflow-platform.user.<name>` role). MLflow reserves `__user_` for itself.
USER_ROLE_PREFIX = "mlflow-platform.user."
# The declaration's format version, and the workspace MLflow uses when workspaces are off
# (mlflow.utils.workspace_utils.DEFAULT_WORKSPACE_NAME): where resource grants live.
AUTH_DECLARATION_VERSION = 1
DEFAULT_WORKSPACE = "default"
MANAGED_ROLE_DESCRIPTION = (
    "managed by mlflow-platform (stack config auth.*): changes made here are undone at the next deploy"
)
SECRET_NAMES = (
    DB_PASSWORD,
    DB_OWNER_PASSWORD,
    DB_MONITOR_PASSWORD,
    S3_ACCESS_KEY_ID,
    S3_SECRET_ACCESS_KEY,
    AUTH_ADMIN_PASSWORD,
    FLASK_SECRET_KEY,
    AUTH_DECLARATION,
    *ENCRYPTION_KEY_NAMES,
    JOB_REDIS_URL,
)
FILE_SUFFIX = "_FILE"

# Lengths of the generated secrets (letters and digits): the stacks and the test kit draw the same.
GENERATED_SECRET_LENGTHS = {
    DB_PASSWORD: 32,
    DB_OWNER_PASSWORD: 32,
    DB_MONITOR_PASSWORD: 32,
    S3_ACCESS_KEY_ID: 20,
    S3_SECRET_ACCESS_KEY: 40,
    AUTH_ADMIN_PASSWORD: 32,  # MLflow's basic-auth wants 12+; 32 letters and digits are ~190 bits
    AUTH_USER_PASSWORD: 32,  # each declared user's, the same
    FLASK_SECRET_KEY: 64,
    CRYPTO_KEK_PASSPHRASE: 64,  # ~380 bits; MLflow derives the KEK from it with PBKDF2
}
# MLflow's job switches (plain): the runner itself, and whether this server schedules the periodic
# tasks. MLflow defaults both to true when unset, so every server is given both, explicitly.
JOB_EXECUTION = "MLFLOW_SERVER_ENABLE_JOB_EXECUTION"
JOB_PERIODIC_TASKS = "MLFLOW_SERVER_JOB_ENABLE_PERIODIC_TASKS"
# Whether the periodic consumer deletes the periodic tasks' locks as it starts (huey_consumer -f).
JOB_FLUSH_PERIODIC_LOCKS = "MLFLOW_SERVER_JOB_FLUSH_PERIODIC_LOCKS_ON_STARTUP"
# The KEK version MLflow folds into the KEK's salt and records with each wrapped key (plain, not
# secret). `mlflow crypto rotate-kek` moves every stored key to the next version.
CRYPTO_KEK_VERSION = "MLFLOW_CRYPTO_KEK_VERSION"
CRYPTO_KEK_VERSION_VALUE = "1"
# A Fernet key is 32 random bytes in url-safe base64 (44 characters), not any string:
# `Fernet(key)` rejects anything else at import time of MLflow's registry models.
FERNET_KEY_BYTES = 32
# The least-privilege role every MLflow server signs in as (DML on MLflow's tables, no DDL):
# created and granted by the boot step as DB_OWNER_USER, on both targets.
SERVER_DB_ROLE = "mlflow_server"
# The metrics exporter's role (DB_MONITOR_USER): LOGIN and pg_monitor only, so it reads the
# statistics and settings views but no row of MLflow's tables.
MONITOR_DB_ROLE = "mlflow_monitor"
# The dev object stores' default bucket encryption, set by mlflow_boot at every boot
# (PutBucketEncryption, idempotent): SSE-S3, the store's own keys (MinIO: its KMS key; SeaweedFS:
# its KEK). "AES256" is the S3 API's name for SSE-S3. Prod's bucket is encrypted by the program.
BUCKET_ENCRYPTION = "MLFLOW_BOOT_BUCKET_ENCRYPTION"
SSE_S3 = "AES256"
# Where proxied artifacts live (the server's `--artifacts-destination`, e.g. s3://bucket/): what
# `mlflow gc`'s own option of that name reads from the environment, and what mlflow_gc resolves
# `mlflow-artifacts:/<path>` URIs against (the server's mapping), so gc deletes the objects itself.
ARTIFACTS_DESTINATION = "MLFLOW_ARTIFACTS_DESTINATION"
# What the boot step does with a schema that is not current (mlflow_boot.prepare):
# - "migrate": upgrade it under the advisory lock (the dev stack, the end-to-end kit: no other
#   writers while a server boots, or only servers of the same version);
# - "require-current": refuse to start (exit 1, one log line naming both revisions) unless the
#   schema is this image's head; an empty database is still created (a first deploy has no writers).
#   Prod sets it: a rolling deploy keeps old tasks writing, so the upgrade is a one-off task run
#   with every server stopped (deploy/aws/upgrade.py, `python -m mlflow_boot upgrade`).
# Unset means "migrate" (what the image always did).
BOOT_SCHEMA = "MLFLOW_BOOT_SCHEMA"
SCHEMA_MIGRATE = "migrate"
SCHEMA_REQUIRE_CURRENT = "require-current"
SCHEMA_MODES = (SCHEMA_MIGRATE, SCHEMA_REQUIRE_CURRENT)
# `python -m mlflow_boot schema-status` exits with one of these (the deploy script reads the exit
# code of a one-off ECS task, which is all DescribeTasks reports of it): the image's schema head
# against the database's revision, tracking and auth databases together.
SCHEMA_STATUS_EXIT_CODES = {"current": 0, "behind": 10, "ahead": 11, "empty": 12}
# The image's one-off commands (after its entrypoint `python -m mlflow_boot`): the schema upgrade
# task runs UPGRADE_COMMAND; the deploy script runs the same task definition with SCHEMA_STATUS_COMMAND.
UPGRADE_COMMAND = ("upgrade",)
SCHEMA_STATUS_COMMAND = ("schema-status",)
# The app `mlflow server --app-name` runs: ours around MLflow's (images/mlflow/server_app.py, found
# through the `mlflow.app` entry points of mlflow_platform_app-1.0.dist-info on PYTHONPATH). Ours keeps
# MLflow's name for the basic-auth app, so MLflow still bootstraps its admin before forking.
PLATFORM_APP = "platform"
BASIC_AUTH_APP = "basic-auth"
APP_NAMES = (PLATFORM_APP, BASIC_AUTH_APP)
# Where the audit log's rotating audit.jsonl is written (a directory on the scratch volume).
AUDIT_LOG_DIR = "MLFLOW_PLATFORM_AUDIT_DIR"
AUDIT_LOG_SUBDIR = "audit"
AUDIT_LOG_FILE = "audit.jsonl"
# The header that names the user a proxy authenticated (the dev nginx sets it from $remote_user,
# replacing any client-sent value). A server trusts it only when this variable names it: on prod
# the ALB passes client headers through, so prod never sets it.
PROXY_USER_HEADER = "MLFLOW_PLATFORM_PROXY_USER_HEADER"
PROXY_USER_HEADER_NAME = "X-MLflow-Platform-User"
# RDS's master password: 40 characters (~238 bits), nothing to escape in a URI.
RDS_PASSWORD_LENGTH = 40
# The dev proxy's basic-auth password.
PROXY_PASSWORD_LENGTH = 32


def fernet_key(raw: bytes) -> str:
    """The Fernet key of `raw` (FERNET_KEY_BYTES random bytes): url-safe base64, padded."""
    if len(raw) != FERNET_KEY_BYTES:
        raise ValueError(f"a Fernet key is {FERNET_KEY_BYTES} bytes, not {len(raw)}")
    return base64.urlsafe_b64encode(raw).decode("ascii")


def fernet_key_from_base64(standard: str) -> str:
    """The Fernet key of bytes given in standard base64 (what random.RandomBytes outputs)."""
    return fernet_key(base64.b64decode(standard, validate=True))


# libpq's TCP settings on every connection to the metadata database. A Multi-AZ failover moves
# the endpoint's DNS name to the standby; a connection still open to the old primary gets no RST
# (its host is gone), so without these a query on it waits for the kernel's retransmissions
# (~15 min) and a pooled connection's pre-ping hangs as long. With them a dead peer is found
# within 30 s of unacknowledged data (tcp_user_timeout, ms) or 30 + 3 x 10 s of idle silence
# (keepalives), and a connection attempt to an address that does not answer yet gives up after
# 10 s (connect_timeout) instead of the kernel's ~2 min.
DB_TCP_OPTIONS: Mapping[str, str] = MappingProxyType(
    {
        "connect_timeout": "10",
        "keepalives": "1",
        "keepalives_idle": "30",
        "keepalives_interval": "10",
        "keepalives_count": "3",
        "tcp_user_timeout": "30000",
    }
)


class MissingSettings(ValueError):
    """Database settings are missing; the message names them."""


def backend_store_uri(environ: Mapping[str, str], *, password_required: bool = True, owner: bool = False) -> str:
    """postgresql+psycopg2://user:password@host:port/db?sslmode=... from the MLFLOW_DB_* settings.

    `environ` must already hold the password itself (NAME_FILE read). Without
    `password_required` a missing password leaves it out (libpq's PGPASSWORD or ~/.pgpass).
    With `owner`, the schema owner's credentials (DB_OWNER_*) instead of the server's.
    """
    user, password = (DB_OWNER_USER, DB_OWNER_PASSWORD) if owner else (DB_USER, DB_PASSWORD)
    required = (DB_HOST, DB_NAME, user) + ((password,) if password_required else ())
    missing = [name for name in required if not environ.get(name)]
    if missing:
        raise MissingSettings(f"missing database settings: {', '.join(missing)}")
    credentials = urllib.parse.quote(environ[user], safe="")
    if environ.get(password):
        credentials += ":" + urllib.parse.quote(environ[password], safe="")
    query = {"sslmode": environ.get(DB_SSLMODE) or "prefer"}
    if environ.get(DB_SSLROOTCERT):
        query["sslrootcert"] = environ[DB_SSLROOTCERT]
    query.update(DB_TCP_OPTIONS)
    host, port = environ[DB_HOST], environ.get(DB_PORT) or str(POSTGRES_PORT)
    name = urllib.parse.quote(environ[DB_NAME], safe="")
    return f"postgresql+psycopg2://{credentials}@{host}:{port}/{name}?{urllib.parse.urlencode(query)}"
