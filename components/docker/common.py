"""Small pieces every dev container uses: secret uploads, health checks, logging, hardening."""

from __future__ import annotations

import pulumi
import pulumi_docker as docker

from components.specs.health import HealthCheck

# Bounded json-file logs, so a chatty container cannot fill a laptop's disk.
LOG_OPTS = {"max-size": "20m", "max-file": "5"}
SECURITY_OPTS = ["no-new-privileges:true"]


def secret_upload(path: str, content: pulumi.Input[str], owner: str) -> docker.ContainerUploadArgs:
    """A file only `owner` can read, whose content stays a Pulumi secret in state."""
    return docker.ContainerUploadArgs(
        file=path,
        content=pulumi.Output.secret(content),
        owner=owner,
        group=owner,
        permissions="0400",
    )


def healthcheck_args(health: HealthCheck) -> docker.ContainerHealthcheckArgs:
    return docker.ContainerHealthcheckArgs(
        tests=health.test,
        interval=f"{health.interval_seconds}s",
        timeout=f"{health.timeout_seconds}s",
        retries=health.retries,
        start_period=f"{health.start_period_seconds}s",
        # Poll quickly while starting, so `wait=True` returns as soon as the service is up.
        start_interval="2s",
    )


def env_list(env: dict[str, str] | object) -> list[str]:
    """Docker wants `K=V` strings; sorted so the diff is stable between runs."""
    return [f"{key}={value}" for key, value in sorted(dict(env).items())]  # type: ignore[arg-type]
