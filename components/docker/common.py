"""Small pieces every dev container uses: secret uploads, health checks, logging, hardening."""

from __future__ import annotations

import pulumi
import pulumi_docker as docker

from components.specs.durations import go_duration
from components.specs.health import HealthCheck

# Bounded json-file logs, so a chatty container cannot fill a laptop's disk.
LOG_OPTS = {"max-size": "20m", "max-file": "5"}
SECURITY_OPTS = ["no-new-privileges:true"]
START_INTERVAL_SECONDS = 2


def container_options(parent: pulumi.Resource, **extra) -> pulumi.ResourceOptions:
    """Containers have fixed names (and nginx a fixed published port), so a replacement must
    remove the old container first: create-before-delete would collide on both."""
    return pulumi.ResourceOptions(parent=parent, delete_before_replace=True, **extra)


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
        # Go's spelling ("2m0s"): the provider reads durations back that way (no perpetual diff).
        interval=go_duration(health.interval_seconds),
        timeout=go_duration(health.timeout_seconds),
        retries=health.retries,
        start_period=go_duration(health.start_period_seconds),
        # Poll quickly while starting, so `wait=True` returns as soon as the service is up.
        start_interval=go_duration(START_INTERVAL_SECONDS),
    )


def env_list(env: dict[str, str] | object) -> list[str]:
    """Docker wants `K=V` strings; sorted so the diff is stable between runs."""
    return [f"{key}={value}" for key, value in sorted(dict(env).items())]  # type: ignore[arg-type]


def pulled_image(parent: pulumi.Resource, reference: str) -> docker.RemoteImage:
    return docker.RemoteImage("image", docker.RemoteImageArgs(name=reference, keep_locally=True),
                              opts=pulumi.ResourceOptions(parent=parent))


def stateful_container(
    parent: pulumi.Resource,
    *,
    name: str,
    prefix: str,
    image: str,
    data_path: str,
    keep_data: bool,
    network: docker.Network,
    alias: str,
    envs: list[str],
    uploads: list[docker.ContainerUploadArgs],
    health: HealthCheck,
    command: list[str] | None = None,
    entrypoints: list[str] | None = None,
    stop_timeout: int | None = None,
) -> docker.Container:
    """A data service on the backend network: pinned image, named volume, health-gated start."""
    volume = docker.Volume(
        "data",
        docker.VolumeArgs(name=f"{prefix}-{name}-data",
                          labels=[docker.VolumeLabelArgs(label="mlflow-platform.data", value=name)]),
        # `pulumi destroy` keeps the data unless the stack says otherwise.
        opts=pulumi.ResourceOptions(parent=parent, retain_on_delete=keep_data),
    )
    return docker.Container(
        name,
        docker.ContainerArgs(
            name=f"{prefix}-{name}",
            image=pulled_image(parent, image).image_id,
            entrypoints=entrypoints,
            command=command,
            envs=envs,
            uploads=uploads,
            volumes=[docker.ContainerVolumeArgs(volume_name=volume.name, container_path=data_path)],
            networks_advanced=[docker.ContainerNetworksAdvancedArgs(name=network.name, aliases=[alias])],
            healthcheck=healthcheck_args(health),
            # Created only once healthy, so the tracking server starts against ready stores.
            wait=True,
            wait_timeout=120,
            restart="unless-stopped",
            security_opts=SECURITY_OPTS,
            log_opts=LOG_OPTS,
            stop_timeout=stop_timeout,
        ),
        opts=container_options(parent),
    )
