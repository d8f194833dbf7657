"""The metadata store on Docker: PostgreSQL with a named volume and generated passwords.

Two roles, as on RDS: the superuser (`database.username`) owns the schema and is used only by the
servers' boot step; every MLflow server signs in as contract.SERVER_DB_ROLE (no DDL)."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_docker as docker

from components.config.docker import DockerDatabaseSettings
from components.docker.common import env_list, formerly, secret_upload, stateful_container
from components.generated import generated_secret
from components.specs.endpoints import DatabaseEndpoint, platform_database
from components.specs.postgres import POSTGRES_UID, postgres_spec
from images.mlflow import server_contract as contract

# The name the tracking server uses to reach it on the backend network.
HOST_ALIAS = "postgres"


@dataclass(frozen=True)
class MetadataStoreArgs:
    settings: DockerDatabaseSettings
    """The database's name, user and image (the stack's `database`)."""
    network: pulumi.Input[str]
    """The network it serves on, by name: the internal one the tracking server joins too."""
    max_connections: int
    """What the MLflow servers may open together (database_connections_needed): PostgreSQL's limit."""
    prefix: str
    keep_data: bool
    """Names on the engine start with `prefix` (`<prefix>-postgres`, `<prefix>-postgres-data`);
    with `keep_data` the volume outlives `pulumi destroy`."""
    monitored: bool = False
    """A metrics exporter signs in too: the servers' boot step creates its role (pg_monitor) with
    a password of its own (`monitor_password`)."""


class MetadataStore(pulumi.ComponentResource):
    """PostgreSQL for MLflow's metadata. Exposes `endpoint`, `secrets` and `readiness`; nothing
    else leaves this component."""

    endpoint: DatabaseEndpoint
    secrets: dict[str, pulumi.Output[str]]
    """The contract's secret names -> values, for the tracking server: the server role's
    DB_PASSWORD and the owner's DB_OWNER_PASSWORD (its boot step's only)."""
    monitor_password: pulumi.Output[str] | None
    """The exporter's role's password (also in `secrets`, for the boot step), when `monitored`."""
    readiness: list[pulumi.Resource]
    """What a client waits for: the container, created only once healthy (depending on the whole
    component would also wait for its image and volume, and record them as dependencies)."""

    def __init__(self, name: str, args: MetadataStoreArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlflow-platform:docker:MetadataStore", name, None, opts)
        settings = args.settings
        spec = postgres_spec(settings, args.max_connections)
        # The superuser's (the schema owner's): PostgreSQL's own password file.
        password = generated_secret(
            f"{name}-password",
            contract.GENERATED_SECRET_LENGTHS[contract.DB_OWNER_PASSWORD],
            pulumi.ResourceOptions(parent=self, aliases=formerly("password")),
        )
        # The servers' role's: set by their boot step, so PostgreSQL itself never reads it.
        server_password = generated_secret(
            f"{name}-server-password",
            contract.GENERATED_SECRET_LENGTHS[contract.DB_PASSWORD],
            pulumi.ResourceOptions(parent=self),
        )
        container = stateful_container(
            self,
            name,
            service="postgres",
            prefix=args.prefix,
            image=spec.image,
            data_path=spec.data_dir,
            keep_data=args.keep_data,
            network=args.network,
            alias=HOST_ALIAS,
            envs=env_list(spec.env),
            entrypoints=list(spec.entrypoint),
            command=list(spec.command),
            uploads=[
                secret_upload(spec.password_file, password, owner=POSTGRES_UID),
                docker.ContainerUploadArgs(file=spec.entrypoint[0], content=spec.entrypoint_script, permissions="0755"),
            ],
            health=spec.health,
            # Let PostgreSQL finish a checkpoint on stop.
            stop_timeout=60,
        )
        self.endpoint = platform_database(
            HOST_ALIAS, spec.port, settings.name, settings.username, monitored=args.monitored
        )
        self.secrets = {contract.DB_PASSWORD: server_password, contract.DB_OWNER_PASSWORD: password}
        self.monitor_password = None
        if args.monitored:
            self.monitor_password = generated_secret(
                f"{name}-monitor-password",
                contract.GENERATED_SECRET_LENGTHS[contract.DB_MONITOR_PASSWORD],
                pulumi.ResourceOptions(parent=self),
            )
            self.secrets[contract.DB_MONITOR_PASSWORD] = self.monitor_password
        self.readiness = [container]
        self.register_outputs({"host": HOST_ALIAS, "container": container.name})
