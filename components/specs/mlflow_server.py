"""The MLflow tracking server: command, environment and health check, built once.

Used as is by the Docker container and the ECS task definition; the end-to-end
tests build it with a loopback host, a free port and a temp scratch dir.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

from components.config.access import AccessSettings
from components.config.base import TrackingSettings
from components.specs import origins
from components.specs.access import promoter_roles
from components.specs.connections import DB_MAX_OVERFLOW, DB_POOL_RECYCLE_SECONDS, DB_POOL_SIZE
from components.specs.endpoints import ArtifactEndpoint, DatabaseEndpoint, JobQueueEndpoint
from components.specs.health import HealthCheck
from components.specs.image_layout import SCRATCH_DIR
from images.mlflow import server_contract as contract

SERVER_PORT = contract.SERVER_PORT
# Longer than any keep-alive in front of MLflow (nginx upstream: 60 s), so the proxy, not
# uvicorn, closes idle connections: otherwise a reused connection can hit a closed socket (502).
DEFAULT_KEEP_ALIVE_SECONDS = 75
BOOT_ENTRYPOINT = ("python", "-m", "mlflow_boot")


@dataclass(frozen=True)
class ServerShape:
    """What a runtime lays out before the stores exist (a port mapping, a target group, a
    volume): the server's port, health check, scratch dir and entrypoint. Nothing in it depends
    on where the stores are; `ServerSpec.shape` is the same thing, read from a whole spec."""

    port: int
    health: HealthCheck
    scratch_dir: str
    entrypoint: tuple[str, ...] = BOOT_ENTRYPOINT
    # What a load balancer or a client probes (the health check's own URL uses it too).
    health_path: str = contract.HEALTH_PATH


def server_shape(*, port: int = SERVER_PORT, scratch_dir: str | None = None) -> ServerShape:
    """The static part of `mlflow_server_spec` (which builds its spec from it, given the same
    `port` and `scratch_dir`)."""
    health = HealthCheck(
        command=("python", "-m", "mlflow_boot", "healthcheck", f"http://127.0.0.1:{port}{contract.HEALTH_PATH}"),
        interval_seconds=15,
        timeout_seconds=5,
        retries=4,
        # First start runs the schema migration before serving.
        start_period_seconds=120,
    )
    return ServerShape(port=port, health=health, scratch_dir=scratch_dir or SCRATCH_DIR)


@dataclass(frozen=True)
class ServerSpec:
    command: tuple[str, ...]
    # Plain settings: no secret ever goes here.
    env: Mapping[str, str]
    # Names the runtime must provide secretly: as NAME_FILE (Docker upload) or NAME (ECS secret).
    secret_env: tuple[str, ...]
    port: int
    health: HealthCheck
    scratch_dir: str
    # Where the migration lock and bucket creation happen: `python -m mlflow_boot ...`.
    entrypoint: tuple[str, ...] = field(default=BOOT_ENTRYPOINT)

    @property
    def argv(self) -> tuple[str, ...]:
        """What the container runs: the boot module, then the server command."""
        return self.entrypoint + self.command

    @property
    def shape(self) -> ServerShape:
        """The part of this spec that does not depend on the stores."""
        return ServerShape(port=self.port, health=self.health, scratch_dir=self.scratch_dir, entrypoint=self.entrypoint)


def metrics_dir(scratch: str) -> str:
    """The exporter's multiprocess directory, on the writable scratch volume."""
    return f"{scratch.rstrip('/')}/{contract.METRICS_SUBDIR}"


def auth_database_name(database: str) -> str:
    """The basic-auth app's own database (users, permissions), next to MLflow's: the boot step
    creates it, the backup tool backs it up when it exists."""
    return f"{database}_auth"


def store_env(database: DatabaseEndpoint, artifacts: ArtifactEndpoint, scratch: str) -> dict[str, str]:
    """What every process of the image that talks to the stores is given (the server, gc): where
    the database is and who signs in, the bucket's region, a writable HOME and TMPDIR. Plain
    settings only; the TLS root and the S3 endpoint are added by each caller where they apply."""
    return {
        contract.DB_HOST: database.host,
        contract.DB_PORT: str(database.port),
        contract.DB_NAME: database.name,
        contract.DB_USER: database.user,
        contract.DB_SSLMODE: database.sslmode,
        "AWS_DEFAULT_REGION": artifacts.region,
        "AWS_REGION": artifacts.region,
        # Proxied uploads are spooled here before they go to the bucket: size it for big artifacts.
        "TMPDIR": scratch,
        # Anything that writes under $HOME lands in scratch too: prod runs a read-only root FS.
        "HOME": scratch,
        "PYTHONUNBUFFERED": "1",
        # A private server phones nowhere (prod tasks could otherwise reach it through NAT).
        "MLFLOW_DISABLE_TELEMETRY": "true",
    }


def mlflow_server_spec(
    tracking: TrackingSettings,
    database: DatabaseEndpoint,
    artifacts: ArtifactEndpoint,
    *,
    listen_host: str = "0.0.0.0",
    port: int = SERVER_PORT,
    scratch_dir: str | None = None,
    keep_alive_seconds: int = DEFAULT_KEEP_ALIVE_SECONDS,
    app_name: str = contract.PLATFORM_APP,
    trust_proxy_user: bool = False,
    auth_admin_username: str = "admin",
    public_origins: Sequence[str] = (),
    schema_upgrades: str = contract.SCHEMA_MIGRATE,
    metrics_hosts: Sequence[str] = (),
    job_queue: JobQueueEndpoint | None = None,
    access: AccessSettings | None = None,
) -> ServerSpec:
    """The one definition of how MLflow runs, given where its stores are.

    `public_origins`: where the stack serves the UI (components/specs/origins.py); MLflow
    accepts them as origins besides `tracking.corsAllowedOrigins`.
    `schema_upgrades` (contract.SCHEMA_MODES): whether a booting server may upgrade the schema
    (`migrate`: dev, where no other writers run) or refuses one that is not current
    (`require-current`: prod, where a rolling deploy keeps old tasks writing).
    `metrics_hosts`: the Host headers a scraper on the private network sends (`name:port`);
    MLflow accepts them besides `tracking.allowedHosts`.
    `app_name` (contract.APP_NAMES): ours around MLflow's app, with or without MLflow's basic-auth.
    `trust_proxy_user`: the audit log names the user from the proxy's header (the dev nginx
    authenticates and sets it; never on prod, whose ALB passes client headers through).
    `access` (basic-auth only): the stack's `auth.*` users and roles: the boot step applies them
    (a secret declaration, contract.AUTH_DECLARATION), the server enforces the promotion rule.
    `job_queue`: the Redis every replica's job consumers share (`tracking.jobExecution` needs
    one); the spec schedules no periodic task: `periodic_tasks_owner` makes the one server's spec
    that does."""
    if app_name not in contract.APP_NAMES:
        raise ValueError(f"app_name={app_name!r}: one of {', '.join(contract.APP_NAMES)}")
    if schema_upgrades not in contract.SCHEMA_MODES:
        raise ValueError(f"schema_upgrades={schema_upgrades!r}: one of {', '.join(contract.SCHEMA_MODES)}")
    if tracking.job_execution and job_queue is None:
        raise ValueError(
            "tracking.jobExecution needs the shared job queue (job_queue): without it every server "
            "would run its own local SQLite queue"
        )
    shape = server_shape(port=port, scratch_dir=scratch_dir)
    scratch = shape.scratch_dir
    allowed_hosts = [*tracking.allowed_hosts, *metrics_hosts]
    if tracking.job_execution:
        # MLflow points its job processes back at http://<--host>:<--port> (mlflow/server/__init__.py:
        # MLFLOW_TRACKING_URI of the job runner), so that Host header must pass the host check.
        allowed_hosts.append(f"{listen_host}:{port}")
    uvicorn_opts = f"--loop uvloop --http httptools --timeout-keep-alive {keep_alive_seconds}"
    command = [
        "mlflow", "server",
        "--host", listen_host,
        "--port", str(port),
        "--workers", str(tracking.workers),
        # Security middleware stays on: only these Host headers are served.
        "--allowed-hosts", ",".join(dict.fromkeys(allowed_hosts)),
        "--uvicorn-opts", uvicorn_opts,
        # Every worker's counters and latency histograms on /metrics (multiprocess files,
        # wiped by the boot module so a dead worker's pid files do not add up forever).
        contract.EXPOSE_PROMETHEUS_FLAG, metrics_dir(scratch),
    ]  # fmt: skip
    cors_origins = origins.merged(tracking.cors_allowed_origins, public_origins)
    if cors_origins:
        command += ["--cors-allowed-origins", ",".join(cors_origins)]
    if tracking.artifacts == "proxied":
        command += [
            "--serve-artifacts",
            "--artifacts-destination", artifacts.root,
            "--default-artifact-root", "mlflow-artifacts:/",
        ]  # fmt: skip
    else:
        command += ["--no-serve-artifacts", "--default-artifact-root", artifacts.root]
    # Always ours: the audit log and the upload-space guard around MLflow's app.
    command += ["--app-name", app_name]
    if tracking.workspaces:
        # Workspaces live in the tracking database (the default --workspace-store-uri).
        command += ["--enable-workspaces"]

    env = {
        **store_env(database, artifacts, scratch),
        "MLFLOW_SQLALCHEMYSTORE_POOL_SIZE": str(DB_POOL_SIZE),
        "MLFLOW_SQLALCHEMYSTORE_MAX_OVERFLOW": str(DB_MAX_OVERFLOW),
        "MLFLOW_SQLALCHEMYSTORE_POOL_RECYCLE": str(DB_POOL_RECYCLE_SECONDS),
        # MLflow's job runner (one per server process, docs/architecture.md "Server jobs"); MLflow
        # turns it on when unset, so it is always given.
        contract.JOB_EXECUTION: "true" if tracking.job_execution else "false",
        # The version of the AI Gateway's KEK (the passphrase is a secret below); rotating the
        # passphrase with `mlflow crypto rotate-kek` moves it to the next one (docs/aws.md).
        contract.CRYPTO_KEK_VERSION: contract.CRYPTO_KEK_VERSION_VALUE,
        contract.BOOT_SCHEMA: schema_upgrades,
        contract.AUDIT_LOG_DIR: f"{scratch.rstrip('/')}/{contract.AUDIT_LOG_SUBDIR}",
    }
    if tracking.job_execution:
        # Unset means true in MLflow: every server but the owner (periodic_tasks_owner) says no.
        env[contract.JOB_PERIODIC_TASKS] = "false"
    if trust_proxy_user:
        env[contract.PROXY_USER_HEADER] = contract.PROXY_USER_HEADER_NAME
    if database.sslrootcert:
        env[contract.DB_SSLROOTCERT] = database.sslrootcert
    if database.owner:
        env[contract.DB_OWNER_USER] = database.owner
        if database.monitor:
            env[contract.DB_MONITOR_USER] = database.monitor
    if artifacts.s3_endpoint_url:
        env["MLFLOW_S3_ENDPOINT_URL"] = artifacts.s3_endpoint_url
    if artifacts.create_bucket:
        env["MLFLOW_BOOT_CREATE_BUCKET"] = artifacts.bucket
        if artifacts.bucket_encryption:
            env[contract.BUCKET_ENCRYPTION] = artifacts.bucket_encryption

    # MLflow's own encryption keys (AI Gateway API keys, webhook secrets): every server, every
    # app, or it falls back to a public default passphrase and a per-process random Fernet key.
    secret_env = [contract.DB_PASSWORD, *contract.ENCRYPTION_KEY_NAMES]
    if database.owner:
        # Read by the boot step only, which drops it before the server starts.
        secret_env.append(contract.DB_OWNER_PASSWORD)
        if database.monitor:
            # The exporter's role's, set by the boot step (which drops it too).
            secret_env.append(contract.DB_MONITOR_PASSWORD)
    if artifacts.static_credentials:
        secret_env += [contract.S3_ACCESS_KEY_ID, contract.S3_SECRET_ACCESS_KEY]
    if tracking.job_execution:
        # The queue's URL carries its password; MLflow reads it from the environment only.
        secret_env.append(contract.JOB_REDIS_URL)
    if app_name == contract.BASIC_AUTH_APP:
        # The boot module writes this ini (database_uri, auth cache) into the writable scratch dir.
        env["MLFLOW_AUTH_CONFIG_PATH"] = f"{scratch.rstrip('/')}/mlflow-auth.ini"
        # Users and permissions in a database of their own, created and migrated at boot.
        env["MLFLOW_BOOT_AUTH_DB_NAME"] = auth_database_name(database.name)
        env["MLFLOW_AUTH_ADMIN_USERNAME"] = auth_admin_username
        secret_env.append(contract.AUTH_ADMIN_PASSWORD)
        # Shared by every worker and replica, or sessions break between them.
        secret_env.append(contract.FLASK_SECRET_KEY)
        if access is not None:
            env["MLFLOW_BOOT_AUTH_DEFAULT_PERMISSION"] = access.default_permission
            env[contract.PROMOTER_ROLES] = ",".join(promoter_roles(access))
            secret_env.append(contract.AUTH_DECLARATION)
    elif access is not None:
        raise ValueError(f"users and roles need app_name={contract.BASIC_AUTH_APP!r}")

    return ServerSpec(
        command=tuple(command),
        env=MappingProxyType(env),
        secret_env=tuple(secret_env),
        port=shape.port,
        health=shape.health,
        scratch_dir=shape.scratch_dir,
        entrypoint=shape.entrypoint,
    )


def jobs_enabled(spec: ServerSpec) -> bool:
    return spec.env.get(contract.JOB_EXECUTION) == "true"


def periodic_tasks_owner(spec: ServerSpec) -> ServerSpec:
    """The same server, scheduling MLflow's periodic tasks (online scoring, trace archival and
    rollups): exactly one server of a stack runs this spec. With two, every task would be queued
    twice a minute; their Huey locks only keep two runs from overlapping."""
    if not jobs_enabled(spec):
        raise ValueError("periodic tasks need the job runner (tracking.jobExecution)")
    owner = {
        contract.JOB_PERIODIC_TASKS: "true",
        # The periodic tasks' Huey locks have no expiry, and MLflow keeps them at start with Redis
        # (shared with other servers); a lock left by a killed owner would skip its task forever.
        # The one owner may delete them: no other server takes them, and the previous owner is gone.
        contract.JOB_FLUSH_PERIODIC_LOCKS: "true",
    }
    return dataclasses.replace(spec, env=MappingProxyType({**spec.env, **owner}))
