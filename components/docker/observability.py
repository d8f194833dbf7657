"""observability.enabled on Docker: postgres_exporter, the proxy's mtail, Prometheus and Grafana.

One component per service, on the backend network (mtail on the frontend one too, where nginx
sends it its lines). Only Grafana is published, on 127.0.0.1, through a network of its own
(Docker publishes nothing from an internal network); Prometheus and the exporter are reachable
from the backend network only. Every file goes in as uploaded content: the pulumi-docker provider
marks `upload` ForceNew (terraform-provider-docker, resource_docker_container.go), so a changed
config, rule or dashboard replaces the container, whose data stays on its kept volume.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_docker as docker

from components.config.docker import ObservabilitySettings
from components.docker.common import (
    env_list,
    formerly,
    secret_upload,
    service_container,
    stateful_container,
)
from components.docker.network import bridge_network
from components.generated import generated_secret
from components.image import mtail_image
from components.specs import postgres_exporter as exporter_spec
from components.specs import proxy_metrics as proxy_metrics_spec
from components.specs.endpoints import DatabaseEndpoint
from components.specs.grafana import ADMIN_USER, GRAFANA_UID, grafana_spec
from components.specs.prometheus import (
    POSTGRES_EXPORTER_HOST,
    POSTGRES_EXPORTER_PORT,
    PROMETHEUS_HOST,
    PROMETHEUS_PORT,
    ScrapeTargets,
    prometheus_container,
)

# Grafana's one published address: this machine only, like the proxy's default.
GRAFANA_BIND_ADDRESS = "127.0.0.1"
GRAFANA_PASSWORD_LENGTH = 32


@dataclass(frozen=True)
class PostgresExporterArgs:
    database: DatabaseEndpoint
    """The metadata store's endpoint; its `monitor` role is the one the exporter signs in as."""
    password: pulumi.Output[str]
    """That role's password (MetadataStore.monitor_password)."""
    image: str
    network: pulumi.Input[str]
    prefix: str
    start_after: Sequence[pulumi.Resource] = ()
    """The tracking server's readiness: its boot step creates the role."""


class PostgresExporter(pulumi.ComponentResource):
    """Exposes `target`, the `host:port` Prometheus scrapes, and `readiness`."""

    target: str
    readiness: list[pulumi.Resource]

    def __init__(self, name: str, args: PostgresExporterArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlflow-platform:docker:PostgresExporter", name, None, opts)
        database = args.database
        if not database.monitor:
            raise ValueError("the database endpoint names no monitoring role for the exporter")
        env = exporter_spec.exporter_env(database.host, database.port, database.name, database.monitor)
        container = service_container(
            self,
            name,
            service="postgres-exporter",
            prefix=args.prefix,
            image=args.image,
            network=args.network,
            alias=POSTGRES_EXPORTER_HOST,
            envs=env_list(env),
            command=list(exporter_spec.exporter_command()),
            uploads=[secret_upload(exporter_spec.PASSWORD_FILE, args.password, owner=exporter_spec.EXPORTER_UID)],
            health=exporter_spec.HEALTH,
            depends_on=args.start_after,
        )
        self.target = f"{POSTGRES_EXPORTER_HOST}:{POSTGRES_EXPORTER_PORT}"
        self.readiness = [container]
        self.register_outputs({"container": container.name})


@dataclass(frozen=True)
class ProxyMetricsArgs:
    backend_network: pulumi.Input[str]
    """Where Prometheus scrapes it."""
    frontend_network: pulumi.Input[str]
    """Where nginx sends it each request's line (nginx joins no other network)."""
    prefix: str
    image_platform: str | None = None
    """The engine's platform, which the image is built for."""


class ProxyMetrics(pulumi.ComponentResource):
    """mtail with the spec's program. Exposes `log_address` (where nginx sends its lines, a name it
    resolves once at start: nginx must start after it and be replaced with it), `target` (what
    Prometheus scrapes) and `container`."""

    log_address: str
    target: str
    container: docker.Container

    def __init__(self, name: str, args: ProxyMetricsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlflow-platform:docker:ProxyMetrics", name, None, opts)
        spec = proxy_metrics_spec.mtail_container()
        image = mtail_image(f"{name}-image", opts=pulumi.ResourceOptions(parent=self), platform=args.image_platform)
        self.container = service_container(
            self,
            name,
            service="mtail",
            prefix=args.prefix,
            image=image,
            network=args.backend_network,
            alias=proxy_metrics_spec.HOST,
            more_networks=[args.frontend_network],
            more_aliases=[proxy_metrics_spec.HOST],
            envs=[],
            entrypoints=list(spec.entrypoint),
            uploads=[docker.ContainerUploadArgs(file=path, content=text) for path, text in spec.uploads],
            health=spec.health,
        )
        self.log_address = f"{proxy_metrics_spec.HOST}:{proxy_metrics_spec.SYSLOG_PORT}"
        self.target = f"{proxy_metrics_spec.HOST}:{proxy_metrics_spec.MTAIL_PORT}"
        self.register_outputs({"container": self.container.name})


@dataclass(frozen=True)
class PrometheusArgs:
    settings: ObservabilitySettings
    targets: ScrapeTargets
    """Every endpoint it scrapes, as the components that run them name them."""
    network: pulumi.Input[str]
    prefix: str
    keep_data: bool
    start_after: Sequence[pulumi.Resource] = ()


class Prometheus(pulumi.ComponentResource):
    """Exposes `url`, how Grafana (on the backend network) reaches it, and `readiness`."""

    url: str
    readiness: list[pulumi.Resource]

    def __init__(self, name: str, args: PrometheusArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlflow-platform:docker:Prometheus", name, None, opts)
        spec = prometheus_container(args.targets, retention_days=args.settings.retention_days)
        container = stateful_container(
            self,
            name,
            service="prometheus",
            prefix=args.prefix,
            data_path=spec.data_dir,
            keep_data=args.keep_data,
            image=args.settings.prometheus_image,
            network=args.network,
            alias=PROMETHEUS_HOST,
            envs=[],
            command=list(spec.command),
            uploads=[docker.ContainerUploadArgs(file=path, content=text) for path, text in spec.uploads],
            health=spec.health,
            depends_on=args.start_after,
        )
        self.url = f"http://{PROMETHEUS_HOST}:{PROMETHEUS_PORT}"
        self.readiness = [container]
        self.register_outputs({"container": container.name})


@dataclass(frozen=True)
class GrafanaArgs:
    settings: ObservabilitySettings
    network: pulumi.Input[str]
    """The backend network, where Prometheus is."""
    prefix: str
    keep_data: bool
    start_after: Sequence[pulumi.Resource] = ()


class Grafana(pulumi.ComponentResource):
    """Exposes `url`, `username` and the secret `password` (stack outputs)."""

    url: pulumi.Output[str]
    username: pulumi.Output[str]
    password: pulumi.Output[str]

    def __init__(self, name: str, args: GrafanaArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlflow-platform:docker:Grafana", name, None, opts)
        settings = args.settings
        url = f"http://localhost:{settings.grafana_port}"
        spec = grafana_spec(root_url=f"{url}/")
        self.password = generated_secret(
            f"{name}-password",
            GRAFANA_PASSWORD_LENGTH,
            pulumi.ResourceOptions(parent=self, aliases=formerly("password")),
        )
        # Its own (not internal) network: the one Docker can publish Grafana's port from.
        published = bridge_network(self, name, args.prefix, "grafana")
        uploads = [docker.ContainerUploadArgs(file=path, content=text) for path, text in spec.files]
        uploads += [
            docker.ContainerUploadArgs(file=spec.entrypoint[0], content=spec.entrypoint_script, permissions="0755"),
            secret_upload(spec.password_file, self.password, owner=GRAFANA_UID),
        ]
        container = stateful_container(
            self,
            name,
            service="grafana",
            prefix=args.prefix,
            data_path=spec.data_dir,
            keep_data=args.keep_data,
            image=settings.grafana_image,
            network=args.network,
            alias="grafana",
            more_networks=[published.name],
            envs=env_list(spec.env),
            entrypoints=list(spec.entrypoint),
            uploads=uploads,
            ports=[
                docker.ContainerPortArgs(
                    internal=spec.port, external=settings.grafana_port, ip=GRAFANA_BIND_ADDRESS, protocol="tcp"
                )
            ],
            health=spec.health,
            depends_on=args.start_after,
        )
        self.url = pulumi.Output.from_input(url)
        self.username = pulumi.Output.from_input(ADMIN_USER)
        self.register_outputs({"url": self.url, "container": container.name})
