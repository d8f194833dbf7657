"""The metadata store on Docker: PostgreSQL with a named volume and a generated password."""

from __future__ import annotations

import pulumi
import pulumi_docker as docker
import pulumi_random as random

from components.config.docker import DockerDatabaseSettings
from components.docker.common import LOG_OPTS, SECURITY_OPTS, env_list, healthcheck_args, secret_upload
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
        random_provider: random.Provider,
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__("mlflow-platform:docker:MetadataStore", name, None, opts)
        spec = postgres_spec(settings)
        password = random.RandomPassword(
            "password", random.RandomPasswordArgs(length=32, special=False),
            opts=pulumi.ResourceOptions(parent=self, provider=random_provider),
        )
        # The engine marks `result` secret on a real run; say so here too, so no path leaks it.
        self.password = pulumi.Output.secret(password.result)

        image = docker.RemoteImage(
            "image", docker.RemoteImageArgs(name=spec.image, keep_locally=True),
            opts=pulumi.ResourceOptions(parent=self),
        )
        volume = docker.Volume(
            "data",
            docker.VolumeArgs(name=f"{prefix}-postgres-data",
                              labels=[docker.VolumeLabelArgs(label="mlflow-platform.data", value="metadata")]),
            # `pulumi destroy` keeps the database unless the stack says otherwise.
            opts=pulumi.ResourceOptions(parent=self, retain_on_delete=keep_data),
        )
        self.container = docker.Container(
            "postgres",
            docker.ContainerArgs(
                name=f"{prefix}-postgres",
                image=image.image_id,
                envs=env_list(spec.env),
                uploads=[secret_upload(spec.password_file, self.password, owner=POSTGRES_UID)],
                volumes=[docker.ContainerVolumeArgs(volume_name=volume.name, container_path=spec.data_dir)],
                networks_advanced=[docker.ContainerNetworksAdvancedArgs(name=network.name, aliases=[HOST_ALIAS])],
                healthcheck=healthcheck_args(spec.health),
                # Created only once healthy, so the tracking server starts against a ready database.
                wait=True,
                wait_timeout=120,
                restart="unless-stopped",
                security_opts=SECURITY_OPTS,
                log_opts=LOG_OPTS,
                # Let PostgreSQL finish a checkpoint on stop.
                stop_timeout=60,
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.endpoint = DatabaseEndpoint(host=HOST_ALIAS, port=spec.port, name=settings.name,
                                         user=settings.username, sslmode="disable")
        self.register_outputs({"host": HOST_ALIAS, "container": self.container.name, "volume": volume.name})
