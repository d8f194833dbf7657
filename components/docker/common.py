"""Small pieces every dev container uses: secret uploads, health checks, logging, hardening, and the
aliases that keep a child's deployed state when it takes its component's name."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pulumi
import pulumi_docker as docker

from components.specs.durations import go_duration
from components.specs.health import HealthCheck

# Bounded json-file logs, so a chatty container cannot fill a laptop's disk.
LOG_OPTS = {"max-size": "20m", "max-file": "5"}
SECURITY_OPTS = ["no-new-privileges:true"]
START_INTERVAL_SECONDS = 2


def formerly(name: str) -> list[pulumi.Alias]:
    """The name a child had before it took its component's name as a prefix (`password` became
    `metadata-store-password`): the engine finds the deployed resource under it and renames it in
    its state instead of replacing it. Names on the engine (containers, volumes) are inputs: unchanged."""
    return [pulumi.Alias(name=name)]


def container_options(parent: pulumi.Resource, was: str, **extra) -> pulumi.ResourceOptions:
    """Containers have fixed names (and nginx a fixed published port), so a replacement must
    remove the old container first: create-before-delete would collide on both."""
    return pulumi.ResourceOptions(parent=parent, delete_before_replace=True, aliases=formerly(was), **extra)


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


def env_list(env: Mapping[str, str]) -> list[str]:
    """Docker wants `K=V` strings; sorted so the diff is stable between runs."""
    return [f"{key}={value}" for key, value in sorted(env.items())]


def pulled_image(parent: pulumi.Resource, name: str, reference: str) -> docker.RemoteImage:
    """`<name>-image`: the pinned image of the component `name`'s container, kept on the engine."""
    return docker.RemoteImage(
        f"{name}-image",
        docker.RemoteImageArgs(name=reference, keep_locally=True),
        opts=pulumi.ResourceOptions(parent=parent, aliases=formerly("image")),
    )


def service_container(
    parent: pulumi.Resource,
    name: str,
    *,
    service: str,
    prefix: str,
    image: str | docker.Image,
    network: pulumi.Input[str],
    alias: str,
    envs: list[str],
    uploads: list[docker.ContainerUploadArgs],
    health: HealthCheck,
    command: list[str] | None = None,
    entrypoints: list[str] | None = None,
    stop_timeout: int | None = None,
    volumes: list[docker.ContainerVolumeArgs] | None = None,
    ports: list[docker.ContainerPortArgs] | None = None,
    more_networks: Sequence[pulumi.Input[str]] = (),
    more_aliases: Sequence[str] = (),
    depends_on: Sequence[pulumi.Resource] = (),
) -> docker.Container:
    """A service on the backend network (and `more_networks`, under `more_aliases`): pinned image
    (a reference it pulls, or an image built by the program), health-gated start.

    `name` is the component's (its children are `<name>-image`, `<name>-<service>`); on the
    engine the container is `<prefix>-<service>`.
    """
    networks = [docker.ContainerNetworksAdvancedArgs(name=network, aliases=[alias])]
    networks += [
        docker.ContainerNetworksAdvancedArgs(name=other, aliases=list(more_aliases) or None) for other in more_networks
    ]
    image_ref = image.image_name if isinstance(image, docker.Image) else pulled_image(parent, name, image).image_id
    return docker.Container(
        f"{name}-{service}",
        docker.ContainerArgs(
            name=f"{prefix}-{service}",
            image=image_ref,
            entrypoints=entrypoints,
            command=command,
            envs=envs,
            uploads=uploads,
            volumes=volumes,
            ports=ports,
            networks_advanced=networks,
            healthcheck=healthcheck_args(health),
            # Created only once healthy, so the tracking server starts against ready stores.
            wait=True,
            wait_timeout=120,
            restart="unless-stopped",
            security_opts=SECURITY_OPTS,
            log_opts=LOG_OPTS,
            stop_timeout=stop_timeout,
        ),
        opts=container_options(parent, service, **({"depends_on": list(depends_on)} if depends_on else {})),
    )


def stateful_container(
    parent: pulumi.Resource,
    name: str,
    *,
    service: str,
    prefix: str,
    data_path: str,
    keep_data: bool,
    **container: Any,
) -> docker.Container:
    """service_container with a named volume at `data_path`: `<name>-data` in the program,
    `<prefix>-<service>-data` on the engine; with `keep_data` it outlives `pulumi destroy`."""
    volume = docker.Volume(
        f"{name}-data",
        docker.VolumeArgs(
            name=f"{prefix}-{service}-data",
            labels=[docker.VolumeLabelArgs(label="mlflow-platform.data", value=service)],
        ),
        # `pulumi destroy` keeps the data unless the stack says otherwise.
        opts=pulumi.ResourceOptions(parent=parent, retain_on_delete=keep_data, aliases=formerly("data")),
    )
    return service_container(
        parent,
        name,
        service=service,
        prefix=prefix,
        volumes=[docker.ContainerVolumeArgs(volume_name=volume.name, container_path=data_path)],
        **container,
    )
