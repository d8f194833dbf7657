"""The server jobs' queue on Docker: Redis on the backend network, a generated password in its
config file, the append-only file on a kept volume, created only once healthy."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from components.config.docker import DockerJobQueueSettings
from components.docker.common import secret_upload, stateful_container
from components.generated import generated_secret
from components.specs.endpoints import JobQueueEndpoint
from components.specs.redis import PASSWORD_LENGTH, REDIS_UID, redis_spec
from images.mlflow import server_contract as contract

# The name the tracking server uses to reach it on the backend network.
HOST_ALIAS = "redis"


@dataclass(frozen=True)
class JobQueueArgs:
    settings: DockerJobQueueSettings
    """The stack's `jobQueue` (its image)."""
    network: pulumi.Input[str]
    """The internal network it serves on, by name (the tracking server's backend network)."""
    prefix: str
    keep_data: bool
    """`<prefix>-redis` and its volume `<prefix>-redis-data`, kept by `pulumi destroy` with `keep_data`."""


class JobQueue(pulumi.ComponentResource):
    """Store-like: exposes `secrets` (the queue's URL, password included) and `readiness`."""

    endpoint: JobQueueEndpoint
    secrets: dict[str, pulumi.Output[str]]
    readiness: list[pulumi.Resource]

    def __init__(self, name: str, args: JobQueueArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlflow-platform:docker:JobQueue", name, None, opts)
        spec = redis_spec(image=args.settings.image)
        password = generated_secret(f"{name}-password", PASSWORD_LENGTH, pulumi.ResourceOptions(parent=self))
        container = stateful_container(
            self,
            name,
            service="redis",
            prefix=args.prefix,
            image=spec.image,
            data_path=spec.data_dir,
            keep_data=args.keep_data,
            network=args.network,
            alias=HOST_ALIAS,
            envs=[],
            command=list(spec.command),
            # A new password (a replaced RandomPassword) rewrites the file: the container is
            # replaced with it, and so are the servers, whose URL changes too.
            uploads=[secret_upload(spec.config_path, password.apply(spec.config_text), owner=REDIS_UID)],
            health=spec.health,
        )
        self.endpoint = JobQueueEndpoint(host=HOST_ALIAS, port=spec.port)
        self.secrets = {contract.JOB_REDIS_URL: pulumi.Output.secret(password.apply(self.endpoint.url))}
        self.readiness = [container]
        self.register_outputs({"host": HOST_ALIAS, "container": container.name})
