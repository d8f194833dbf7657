"""The ECS container definition of the MLflow server, from its ServerSpec (pure data, no Pulumi)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from components.specs.gc import GcSpec
from components.specs.image_layout import IMAGE_UID
from components.specs.mlflow_server import ServerSpec
from images.mlflow import server_contract as contract

CONTAINER_NAME = "mlflow"
GC_CONTAINER_NAME = "mlflow-gc"
AUDIT_CONTAINER_NAME = "audit-log"
# No capability, and an init process that reaps what the command forks.
LINUX_PARAMETERS = {"initProcessEnabled": True, "capabilities": {"drop": ["ALL"]}}
SCRATCH_VOLUME = "scratch"
# The image's non-root user (images/mlflow/Dockerfile).
IMAGE_USER = f"{IMAGE_UID}:{IMAGE_UID}"
# Seconds between SIGTERM and SIGKILL: uvicorn finishes in-flight requests (Fargate allows 120).
STOP_TIMEOUT_SECONDS = 120


class SecretLeakError(ValueError):
    """A secret name was about to be passed as a plain environment variable."""


@dataclass(frozen=True)
class EcsSecret:
    """Where ECS reads one secret value: a JSON key of a Secrets Manager secret, at one version,
    or at AWSCURRENT when the service that owns the secret rotates it (a resolved
    `lib.secrets.SecretRef`)."""

    arn: str
    key: str
    version_id: str | None


def value_from(secret: EcsSecret) -> str:
    """ECS `valueFrom` of one JSON key, pinned to a version: <secret arn>:<json key>:<version
    stage>:<version id>, the stage left empty (a version id and a stage are exclusive).

    Pinned, so a new value rolls the tasks onto it instead of leaving them on whatever AWSCURRENT
    was when they started. Unpinned (`<arn>:<key>::`, ECS's form for AWSCURRENT) only for a
    secret another service rotates: a pinned version would be retired under the tasks.
    The only place this syntax is written.
    """
    return f"{secret.arn}:{secret.key}::{secret.version_id or ''}"


def container_definition(
    spec: ServerSpec,
    *,
    image: str,
    secrets: Mapping[str, EcsSecret],
    log_group: str,
    region: str,
) -> dict:
    """Runs exactly `spec.argv`, as a non-root user on a read-only root filesystem.

    `secrets`: env name -> where ECS reads it; it must cover every name in `spec.secret_env`.
    """
    missing = sorted(set(spec.secret_env) - set(secrets))
    if missing:
        raise ValueError(f"no ECS secret for {', '.join(missing)}")
    env = dict(spec.env)
    leaked = sorted(set(env) & set(secrets))
    if leaked:
        raise SecretLeakError(f"{', '.join(leaked)} must be passed as secrets, not environment")
    health = spec.health
    return {
        "name": CONTAINER_NAME,
        "image": image,
        "essential": True,
        # entryPoint + command == spec.argv: the same process the Docker stack runs.
        "entryPoint": list(spec.entrypoint),
        "command": list(spec.command),
        "user": IMAGE_USER,
        "readonlyRootFilesystem": True,
        "portMappings": [{"containerPort": spec.port, "protocol": "tcp", "name": "http"}],
        "environment": [{"name": k, "value": v} for k, v in sorted(env.items())],
        "secrets": [{"name": k, "valueFrom": value_from(v)} for k, v in sorted(secrets.items())],
        # The only writable path: Fargate ephemeral storage, where TMPDIR spools proxied uploads.
        "mountPoints": [{"sourceVolume": SCRATCH_VOLUME, "containerPath": spec.scratch_dir, "readOnly": False}],
        "healthCheck": {
            "command": health.test,
            "interval": health.interval_seconds,
            "timeout": health.timeout_seconds,
            "retries": health.retries,
            "startPeriod": health.start_period_seconds,
        },
        "linuxParameters": LINUX_PARAMETERS,
        "stopTimeout": STOP_TIMEOUT_SECONDS,
        "ulimits": [{"name": "nofile", "softLimit": 65536, "hardLimit": 65536}],
        "logConfiguration": log_configuration(log_group, region),
    }


def gc_container_definition(spec: GcSpec, *, image: str, secrets: Mapping[str, EcsSecret], log_group: str,
                            region: str) -> dict:  # fmt: skip
    """Runs `spec.argv` once (no port, no health check), hardened as the server's container."""
    missing = sorted(set(spec.secret_env) - set(secrets))
    if missing:
        raise ValueError(f"no ECS secret for {', '.join(missing)}")
    leaked = sorted(set(spec.env) & set(secrets))
    if leaked:
        raise SecretLeakError(f"{', '.join(leaked)} must be passed as secrets, not environment")
    return {
        "name": GC_CONTAINER_NAME,
        "image": image,
        "essential": True,
        # The image's ENTRYPOINT is replaced as the server's is: argv is the whole process.
        "entryPoint": list(spec.argv[:3]),
        "command": list(spec.argv[3:]),
        "user": IMAGE_USER,
        "readonlyRootFilesystem": True,
        "environment": [{"name": k, "value": v} for k, v in sorted(spec.env.items())],
        "secrets": [{"name": k, "valueFrom": value_from(v)} for k, v in sorted(secrets.items())],
        "mountPoints": [{"sourceVolume": SCRATCH_VOLUME, "containerPath": spec.scratch_dir, "readOnly": False}],
        "linuxParameters": LINUX_PARAMETERS,
        "logConfiguration": log_configuration(log_group, region),
    }


def audit_sidecar_definition(spec: ServerSpec, *, image: str, log_group: str, region: str) -> dict:
    """A container that prints the server's audit.jsonl (on the shared scratch volume) to its own
    log group: the audit trail keeps its own retention. The server's image (nothing else to pull
    or scan), no secret, the volume read-only; not essential, so it never stops the server."""
    audit_file = spec.env[contract.AUDIT_LOG_DIR].rstrip("/") + "/" + contract.AUDIT_LOG_FILE
    return {
        "name": AUDIT_CONTAINER_NAME,
        "image": image,
        "essential": False,
        # -F: follows the name across the RotatingFileHandler's renames, waits for it to exist.
        "entryPoint": ["tail", "-F", "-n", "+1", audit_file],
        "user": IMAGE_USER,
        "readonlyRootFilesystem": True,
        "mountPoints": [{"sourceVolume": SCRATCH_VOLUME, "containerPath": spec.scratch_dir, "readOnly": True}],
        # The server creates the file: start once it runs.
        "dependsOn": [{"containerName": CONTAINER_NAME, "condition": "START"}],
        "linuxParameters": LINUX_PARAMETERS,
        "logConfiguration": log_configuration(log_group, region, stream_prefix=AUDIT_CONTAINER_NAME),
    }


def log_configuration(log_group: str, region: str, *, stream_prefix: str = CONTAINER_NAME) -> dict:
    return {
        "logDriver": "awslogs",
        "options": {
            "awslogs-group": log_group,
            "awslogs-region": region,
            "awslogs-stream-prefix": stream_prefix,
            # Never block the server on a slow log pipe; a bounded buffer drops instead.
            "mode": "non-blocking",
            "max-buffer-size": "25m",
        },
    }


def one_off_container_definition(
    spec: ServerSpec,
    *,
    command: Sequence[str],
    stream_prefix: str,
    image: str,
    secrets: Mapping[str, EcsSecret],
    log_group: str,
    region: str,
) -> dict:
    """The server's container (image, env, secrets, user, read-only root, logs) running `command`
    after the same entrypoint and exiting: no port and no health check (nothing listens, and ECS
    would mark the task unhealthy), its log streams under `stream_prefix/` of the same group."""
    definition = container_definition(spec, image=image, secrets=secrets, log_group=log_group, region=region)
    definition["command"] = list(command)
    del definition["portMappings"], definition["healthCheck"]
    definition["logConfiguration"]["options"]["awslogs-stream-prefix"] = stream_prefix
    return definition
