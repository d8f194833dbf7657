"""The dev stack: explicit providers, then network, stores, tracking server and proxy."""

from __future__ import annotations

import pulumi
import pulumi_docker as docker
import pulumi_random as random
import pulumi_tls as tls

from components.config.docker import DockerSettings
from components.docker.artifact_store import MinioStore
from components.docker.engine import NO_ENGINE_HELP, image_platform, resolve_docker_host
from components.docker.metadata_store import PostgresStore
from components.docker.network import DockerNetwork
from components.docker.proxy import NginxProxy
from components.docker.seaweedfs_store import SeaweedfsStore
from components.docker.tracking_server import MlflowServer
from components.outputs import PlatformOutputs
from images.mlflow import server_contract as contract
from components.specs.mlflow_server import database_connections_needed, mlflow_server_spec


class DockerPlatform(pulumi.ComponentResource):
    outputs: PlatformOutputs

    def __init__(self, name: str, settings: DockerSettings, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlflow-platform:docker:Platform", name, None, opts)
        prefix = name
        # Explicit providers, the Docker one given the endpoint resolved here (config, else the active
        # docker context), so the provider never guesses from its own environment.
        host, host_source = resolve_docker_host(settings.docker.host)
        build_platform, platform_source = image_platform(host)
        pulumi.log.info(f"Docker engine: {host} (from {host_source})")
        if platform_source == "engine":
            pulumi.log.info(f"MLflow image platform: {build_platform} (the engine's)")
        else:
            pulumi.log.info(f"no Docker engine answers at {host}: {NO_ENGINE_HELP}. MLflow image platform: "
                            f"{build_platform} (this machine's architecture)")
        docker_provider = docker.Provider("docker", docker.ProviderArgs(host=host),
                                          opts=pulumi.ResourceOptions(parent=self))
        random_provider = random.Provider("random", opts=pulumi.ResourceOptions(parent=self))
        tls_provider = tls.Provider("tls", opts=pulumi.ResourceOptions(parent=self))
        child = pulumi.ResourceOptions(parent=self, providers={"docker": docker_provider})
        keep_data = settings.docker.keep_data_on_destroy

        network = DockerNetwork("network", prefix, opts=child)
        database = PostgresStore(
            "metadata-store", settings.database, prefix=prefix, network=network.backend, keep_data=keep_data,
            max_connections=database_connections_needed(settings.tracking.workers, settings.tracking.replicas),
            random_provider=random_provider, opts=child,
        )
        store = SeaweedfsStore if settings.artifact_store.engine == "seaweedfs" else MinioStore
        artifacts = store("artifact-store", settings.artifact_store, prefix=prefix, network=network.backend,
                          keep_data=keep_data, random_provider=random_provider, opts=child)

        spec = mlflow_server_spec(settings.tracking, database.endpoint, artifacts.endpoint)
        server = MlflowServer(
            "tracking-server", spec, prefix=prefix, replicas=settings.tracking.replicas, image_platform=build_platform,
            secrets={
                contract.DB_PASSWORD: database.password,
                contract.S3_ACCESS_KEY_ID: artifacts.access_key,
                contract.S3_SECRET_ACCESS_KEY: artifacts.secret_key,
            },
            networks=[network.backend, network.frontend],
            depends_on=[database.container, artifacts.container],
            opts=child,
        )
        proxy = NginxProxy(
            "proxy", settings.proxy, prefix=prefix, upstreams=server.upstreams, upstream_containers=server.containers,
            clients_reach_object_store=artifacts.endpoint.reachable_by_clients,
            network=network.frontend, random_provider=random_provider, tls_provider=tls_provider, opts=child,
        )
        self.outputs = PlatformOutputs(
            tracking_uri=proxy.tracking_uri,
            username=proxy.username,
            password=proxy.password,
            tls_certificate=proxy.certificate,
        )
        self.register_outputs({"trackingUri": proxy.tracking_uri})
