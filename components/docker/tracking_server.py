"""The tracking server on Docker: the repo's MLflow image, `replicas` containers, one spec."""

from __future__ import annotations

from typing import Mapping

import pulumi
import pulumi_docker as docker

from components.docker.common import (
    LOG_OPTS,
    SECURITY_OPTS,
    container_options,
    env_list,
    healthcheck_args,
    secret_upload,
)
from components.image import mlflow_image
from components.specs.image_layout import IMAGE_UID
from components.specs.mlflow_server import ServerSpec

MLFLOW_UID = IMAGE_UID
SECRETS_DIR = "/run/secrets"


def secret_file_path(name: str) -> str:
    return f"{SECRETS_DIR}/{name.lower()}"


class MlflowServer(pulumi.ComponentResource):
    """Runs `spec` as it is; secrets arrive as files named by NAME_FILE variables."""

    upstreams: list[str]
    containers: list[docker.Container]

    def __init__(
        self,
        name: str,
        spec: ServerSpec,
        *,
        prefix: str,
        replicas: int,
        image_platform: str | None = None,
        secrets: Mapping[str, pulumi.Output[str]],
        networks: list[docker.Network],
        depends_on: list[pulumi.Resource],
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__("mlflow-platform:docker:TrackingServer", name, None, opts)
        if set(secrets) != set(spec.secret_env):
            raise ValueError(f"the server needs secrets {sorted(spec.secret_env)}, got {sorted(secrets)}")
        # The engine's own platform (components/docker/engine.py): unset, pulumi-docker builds for the
        # architecture of its provider binary, an emulated image under Rosetta on an arm64 engine.
        image = mlflow_image("image", "mlflow-platform/mlflow", opts=pulumi.ResourceOptions(parent=self),
                             platform=image_platform)

        env = dict(spec.env)
        env.update({f"{secret}_FILE": secret_file_path(secret) for secret in spec.secret_env})
        uploads = [secret_upload(secret_file_path(secret), secrets[secret], owner=MLFLOW_UID)
                   for secret in spec.secret_env]

        self.containers = []
        self.upstreams = []
        for index in range(replicas):
            alias = f"mlflow-{index}"
            container = docker.Container(
                alias,
                docker.ContainerArgs(
                    name=f"{prefix}-{alias}",
                    image=image.image_name,
                    # The image's ENTRYPOINT is the boot module; give the whole argv explicitly
                    # so the container runs exactly what the spec (and ECS, and the tests) run.
                    entrypoints=list(spec.entrypoint),
                    command=list(spec.command),
                    envs=env_list(env),
                    uploads=uploads,
                    user=f"{MLFLOW_UID}:{MLFLOW_UID}",
                    networks_advanced=[
                        docker.ContainerNetworksAdvancedArgs(name=network.name, aliases=[alias])
                        for network in networks
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
                opts=container_options(self, depends_on=depends_on),
            )
            self.containers.append(container)
            self.upstreams.append(f"{alias}:{spec.port}")
        self.register_outputs({"image": image.image_name, "upstreams": self.upstreams})
