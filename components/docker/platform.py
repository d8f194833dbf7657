"""The dev stack: explicit providers, then network, stores, tracking server and proxy."""

from __future__ import annotations

import pulumi
import pulumi_docker as docker
import pulumi_random as random
import pulumi_tls as tls

from components.config.docker import DockerSettings
from components.docker.artifact_store import ArtifactStoreArgs, MinioArtifactStore
from components.docker.encryption_keys import EncryptionKeys, EncryptionKeysArgs
from components.docker.engine import NO_ENGINE_HELP, image_platform, resolve_docker_host, server_addresses
from components.docker.job_queue import JobQueue, JobQueueArgs
from components.docker.metadata_store import MetadataStore, MetadataStoreArgs
from components.docker.mlflow_auth import MlflowAuth, MlflowAuthArgs
from components.docker.network import Network, NetworkArgs
from components.docker.observability import (
    Grafana,
    GrafanaArgs,
    PostgresExporter,
    PostgresExporterArgs,
    Prometheus,
    PrometheusArgs,
    ProxyMetrics,
    ProxyMetricsArgs,
)
from components.docker.proxy import Proxy, ProxyArgs
from components.docker.seaweedfs_store import SeaweedfsArtifactStore
from components.docker.tracking_server import TrackingServer, TrackingServerArgs
from components.outputs import PlatformOutputs
from components.specs.connections import ConnectionBudget, engines_per_worker
from components.specs.mlflow_server import SERVER_PORT, mlflow_server_spec
from components.specs.origins import proxy_origins
from components.specs.prometheus import PROMETHEUS_HOST, PROMETHEUS_PORT, ScrapeTargets
from images.mlflow import server_contract as contract


class Platform(pulumi.ComponentResource):
    """The whole dev stack. Its args are the validated stack settings themselves (DockerSettings):
    one per stack, named `mlflow-<stack>`, which prefixes every name on the engine."""

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
            pulumi.log.info(
                f"no Docker engine answers at {host}: {NO_ENGINE_HELP}. MLflow image platform: "
                f"{build_platform} (this machine's architecture)"
            )
        # Kept under their first names: a renamed explicit provider changes the provider reference
        # of every resource in the stack, which older engines replaced even with an alias
        # (pulumi/pulumi#3979, #18509).
        docker_provider = docker.Provider(
            "docker", docker.ProviderArgs(host=host), opts=pulumi.ResourceOptions(parent=self)
        )
        random_provider = random.Provider("random", opts=pulumi.ResourceOptions(parent=self))
        tls_provider = tls.Provider("tls", opts=pulumi.ResourceOptions(parent=self))
        # Every resource under the components takes its package's provider from here (parent=self).
        child = pulumi.ResourceOptions(parent=self, providers=[docker_provider, random_provider, tls_provider])
        keep_data = settings.docker.keep_data_on_destroy
        # auth.mode mlflow: MLflow's basic-auth app with the declared users; nginx checks nobody.
        mlflow_auth = settings.auth.mode == "mlflow"
        observed = settings.observability.enabled

        network = Network("network", NetworkArgs(prefix=prefix), opts=child)
        database = MetadataStore(
            "metadata-store",
            MetadataStoreArgs(
                settings.database,
                network=network.backend_name,
                # Every pool of every worker of every replica (no overlap: containers are replaced
                # delete-first); with auth.mode proxy the basic auth is nginx's, so two pools per
                # worker, three with MLflow's basic-auth app.
                max_connections=ConnectionBudget(
                    workers=settings.tracking.workers,
                    servers=settings.tracking.replicas,
                    engines=engines_per_worker(basic_auth=mlflow_auth),
                ).total,
                prefix=prefix,
                keep_data=keep_data,
                monitored=observed,
            ),
            opts=child,
        )
        store = SeaweedfsArtifactStore if settings.artifact_store.engine == "seaweedfs" else MinioArtifactStore
        artifacts = store(
            "artifact-store",
            ArtifactStoreArgs(
                settings.artifact_store,
                network=network.backend_name,
                prefix=prefix,
                keep_data=keep_data,
                monitored=observed,
            ),
            opts=child,
        )

        keys = EncryptionKeys("encryption-keys", EncryptionKeysArgs(), opts=child)
        auth = MlflowAuth("auth", MlflowAuthArgs(settings.auth), opts=child) if mlflow_auth else None
        queue = None
        if settings.tracking.job_execution:
            queue = JobQueue(
                "job-queue",
                JobQueueArgs(settings.job_queue, network=network.backend_name, prefix=prefix, keep_data=keep_data),
                opts=child,
            )

        spec = mlflow_server_spec(
            settings.tracking,
            database.endpoint,
            artifacts.endpoint,
            public_origins=proxy_origins(settings.proxy),
            # proxy: nginx authenticates every request and names the user to the audit log.
            trust_proxy_user=not mlflow_auth,
            app_name=contract.BASIC_AUTH_APP if mlflow_auth else contract.PLATFORM_APP,
            auth_admin_username=settings.auth.admin_username,
            access=settings.auth if mlflow_auth else None,
            # The Host header Prometheus sends each server (the address it scrapes).
            metrics_hosts=server_addresses(settings.tracking.replicas, SERVER_PORT) if observed else (),
            job_queue=queue.endpoint if queue else None,
        )
        server = TrackingServer(
            "tracking-server",
            TrackingServerArgs(
                spec,
                secrets={
                    **database.secrets,
                    **artifacts.secrets,
                    **keys.secrets,
                    **(auth.secrets if auth else {}),
                    **(queue.secrets if queue else {}),
                },
                networks=[network.backend_name, network.frontend_name],
                prefix=prefix,
                replicas=settings.tracking.replicas,
                image_platform=build_platform,
                start_after=[*database.readiness, *artifacts.readiness, *(queue.readiness if queue else [])],
            ),
            opts=child,
        )
        # Before nginx, which resolves mtail's name once, when it starts.
        proxy_metrics = None
        if observed:
            proxy_metrics = ProxyMetrics(
                "proxy-metrics",
                ProxyMetricsArgs(
                    backend_network=network.backend_name,
                    frontend_network=network.frontend_name,
                    prefix=prefix,
                    image_platform=build_platform,
                ),
                opts=child,
            )
        proxy = Proxy(
            "proxy",
            ProxyArgs(
                settings.proxy,
                network=network.frontend_name,
                prefix=prefix,
                upstreams=server.upstreams,
                clients_reach_object_store=artifacts.endpoint.reachable_by_clients,
                authenticate=not mlflow_auth,
                metrics_log=proxy_metrics.log_address if proxy_metrics else None,
                start_after=[*server.readiness, *([proxy_metrics.container] if proxy_metrics else [])],
                replace_with=[*server.replacement_triggers, *([proxy_metrics.container] if proxy_metrics else [])],
            ),
            opts=child,
        )
        self.outputs = PlatformOutputs(
            tracking_uri=proxy.tracking_uri,
            # Who the stack hands out: nginx's one user, or MLflow's admin.
            username=auth.username if auth else proxy.username,
            password=auth.password if auth else proxy.password,
            tls_certificate=proxy.certificate,
            users=auth.users if auth else None,
        )
        if observed:
            assert proxy_metrics is not None
            grafana = self._observability(settings, prefix, database, artifacts, server, proxy_metrics, network, child)
            self.outputs.grafana_url = grafana.url
            self.outputs.grafana_password = grafana.password
        self.register_outputs({"trackingUri": proxy.tracking_uri})

    def _observability(
        self,
        settings: DockerSettings,
        prefix: str,
        database: MetadataStore,
        artifacts: MinioArtifactStore | SeaweedfsArtifactStore,
        server: TrackingServer,
        proxy_metrics: ProxyMetrics,
        network: Network,
        child: pulumi.ResourceOptions,
    ) -> Grafana:
        """observability.enabled: the exporter (once the servers' boot step made its role),
        Prometheus scraping what the other components say they run (the servers, the exporter,
        the proxy's mtail, the artifact store), Grafana reading Prometheus."""
        obs, keep_data = settings.observability, settings.docker.keep_data_on_destroy
        assert database.monitor_password is not None  # MetadataStore(monitored=True)
        store_metrics = artifacts.metrics
        assert store_metrics is not None  # ArtifactStoreArgs(monitored=True)
        exporter = PostgresExporter(
            "postgres-exporter",
            PostgresExporterArgs(
                database.endpoint,
                password=database.monitor_password,
                image=obs.postgres_exporter_image,
                network=network.backend_name,
                prefix=prefix,
                start_after=server.readiness,
            ),
            opts=child,
        )
        targets = ScrapeTargets(
            mlflow=server.upstreams,
            postgres_exporter=[exporter.target],
            prometheus=[f"{PROMETHEUS_HOST}:{PROMETHEUS_PORT}"],
            proxy=[proxy_metrics.target],
            object_store=[store_metrics.target],
            object_store_path=store_metrics.path,
        )
        prometheus = Prometheus(
            "prometheus",
            PrometheusArgs(
                obs,
                targets,
                network=network.backend_name,
                prefix=prefix,
                keep_data=keep_data,
                start_after=exporter.readiness,
            ),
            opts=child,
        )
        return Grafana(
            "grafana",
            GrafanaArgs(
                obs, network=network.backend_name, prefix=prefix, keep_data=keep_data, start_after=prometheus.readiness
            ),
            opts=child,
        )


# components/platform.py (shared with the AWS target, outside this change) imports this name.
DockerPlatform = Platform
