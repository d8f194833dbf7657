"""The tracking server on Docker: the repo's MLflow image, `replicas` containers, one spec."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_docker as docker

from components.docker.common import (
    LOG_OPTS,
    SECURITY_OPTS,
    container_options,
    env_list,
    formerly,
    healthcheck_args,
    secret_upload,
)
from components.docker.engine import server_addresses, server_alias
from components.image import mlflow_image
from components.specs.image_layout import IMAGE_UID
from components.specs.mlflow_server import ServerSpec, jobs_enabled, periodic_tasks_owner

MLFLOW_UID = IMAGE_UID
SECRETS_DIR = "/run/secrets"


def secret_file_path(name: str) -> str:
    return f"{SECRETS_DIR}/{name.lower()}"


@dataclass(frozen=True)
class TrackingServerArgs:
    spec: ServerSpec
    """What each container runs, as it is: argv, env, health check and the secret names it needs."""
    secrets: Mapping[str, pulumi.Output[str]]
    """A value for each of `spec.secret_env`, keyed by the contract's names: the stores' `secrets`,
    merged. Each arrives as a file only MLflow reads, named by a NAME_FILE variable."""
    networks: Sequence[pulumi.Input[str]]
    """The networks every container joins, by name: the stores' and the proxy's."""
    prefix: str
    replicas: int
    """Containers `<prefix>-mlflow-0` ... `<prefix>-mlflow-<replicas - 1>` on the engine."""
    image_platform: str | None = None
    """The engine's own platform (components/docker/engine.py): unset, pulumi-docker builds for the
    architecture of its provider binary, an emulated image under Rosetta on an arm64 engine."""
    start_after: Sequence[pulumi.Resource] = ()
    """The stores' `readiness`: the containers start against stores that are already healthy."""


class TrackingServer(pulumi.ComponentResource):
    """Runs `spec` as it is; secrets arrive as files named by NAME_FILE variables."""

    upstreams: list[str]
    """`host:port` of each container, as the proxy's network resolves it."""
    readiness: list[pulumi.Resource]
    """What a client waits for: the containers, each created only once healthy."""
    replacement_triggers: list[pulumi.Resource]
    """What a client that resolves the servers' addresses once (nginx, at start) must be replaced
    with: a replaced container comes back with another address. `replace_with` takes custom
    resources only, so these are the containers, not this component."""

    def __init__(self, name: str, args: TrackingServerArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlflow-platform:docker:TrackingServer", name, None, opts)
        spec = args.spec
        if set(args.secrets) != set(spec.secret_env):
            raise ValueError(f"the server needs secrets {sorted(spec.secret_env)}, got {sorted(args.secrets)}")
        image = mlflow_image(
            f"{name}-image",
            "mlflow-platform/mlflow",
            opts=pulumi.ResourceOptions(parent=self, aliases=formerly("image")),
            platform=args.image_platform,
        )

        uploads = [
            secret_upload(secret_file_path(secret), args.secrets[secret], owner=MLFLOW_UID)
            for secret in spec.secret_env
        ]

        containers: list[pulumi.Resource] = []
        for index in range(args.replicas):
            alias = server_alias(index)
            # The first server schedules MLflow's periodic tasks; the others only consume jobs.
            own = periodic_tasks_owner(spec) if index == 0 and jobs_enabled(spec) else spec
            env = dict(own.env)
            env.update({f"{secret}_FILE": secret_file_path(secret) for secret in spec.secret_env})
            container = docker.Container(
                f"{name}-{alias}",
                docker.ContainerArgs(
                    name=f"{args.prefix}-{alias}",
                    image=image.image_name,
                    # The image's ENTRYPOINT is the boot module; give the whole argv explicitly
                    # so the container runs exactly what the spec (and ECS, and the tests) run.
                    entrypoints=list(spec.entrypoint),
                    command=list(spec.command),
                    envs=env_list(env),
                    uploads=uploads,
                    user=f"{MLFLOW_UID}:{MLFLOW_UID}",
                    networks_advanced=[
                        docker.ContainerNetworksAdvancedArgs(name=network, aliases=[alias]) for network in args.networks
                    ],
                    healthcheck=healthcheck_args(spec.health),
                    wait=True,
                    wait_timeout=300,
                    restart="unless-stopped",
                    # Nothing in MLflow needs a Linux capability.
                    capabilities=docker.ContainerCapabilitiesArgs(drops=["ALL"]),
                    security_opts=SECURITY_OPTS,
                    log_opts=LOG_OPTS,
                    # Give uvicorn time to finish in-flight uploads on stop.
                    stop_timeout=30,
                ),
                opts=container_options(self, alias, depends_on=list(args.start_after)),
            )
            containers.append(container)
        self.upstreams = server_addresses(args.replicas, spec.port)
        self.readiness = containers
        self.replacement_triggers = containers
        self.register_outputs({"image": image.image_name, "upstreams": self.upstreams})
