"""The metadata store on Docker: PostgreSQL with a named volume and a generated password."""

from __future__ import annotations

import pulumi
import pulumi_docker as docker
import pulumi_random as random

from components.config.docker import DockerDatabaseSettings
from components.generated import generated_secret
from images.mlflow import server_contract as contract
from components.docker.common import env_list, secret_upload, stateful_container
from components.specs.endpoints import DatabaseEndpoint
from components.specs.postgres import POSTGRES_UID, postgres_spec

# The name the tracking server uses to reach it on the backend network.
HOST_ALIAS = "postgres"


class PostgresStore(pulumi.ComponentResource):
    """Exposes `endpoint` and the secret `password`; nothing else leaves this component."""

    endpoint: DatabaseEndpoint
    password: pulumi.Output[str]
    container: docker.Container

    def __init__(
        self,
        name: str,
        settings: DockerDatabaseSettings,
        *,
        prefix: str,
        network: docker.Network,
        keep_data: bool,
        max_connections: int,
        random_provider: random.Provider,
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__("mlflow-platform:docker:MetadataStore", name, None, opts)
        spec = postgres_spec(settings, max_connections)
        self.password = generated_secret("password", contract.GENERATED_SECRET_LENGTHS[contract.DB_PASSWORD], pulumi.ResourceOptions(parent=self, provider=random_provider))
        self.container = stateful_container(
            self, name="postgres", prefix=prefix, image=spec.image, data_path=spec.data_dir, keep_data=keep_data,
            network=network, alias=HOST_ALIAS, envs=env_list(spec.env),
            entrypoints=list(spec.entrypoint),
            command=list(spec.command),
            uploads=[
                secret_upload(spec.password_file, self.password, owner=POSTGRES_UID),
                docker.ContainerUploadArgs(file=spec.entrypoint[0], content=spec.entrypoint_script, permissions="0755"),
            ],
            health=spec.health,
            # Let PostgreSQL finish a checkpoint on stop.
            stop_timeout=60,
        )
        self.endpoint = DatabaseEndpoint(host=HOST_ALIAS, port=spec.port, name=settings.name,
                                         user=settings.username, sslmode="disable")
        self.register_outputs({"host": HOST_ALIAS, "container": self.container.name})
