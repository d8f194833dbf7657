"""Settings of the `docker` target: the laptop stack."""

from __future__ import annotations

import fnmatch
import ipaddress
from typing import Literal

from pydantic import Field, IPvAnyAddress

from components.config.base import (
    BucketName,
    ByteSize,
    ConfigModel,
    DatabaseSettings,
    PinnedImage,
    Port,
    TrackingSettings,
)
from components.versions import MINIO_IMAGE, NGINX_IMAGE, POSTGRES_IMAGE


def is_allowed_host(host: str, allowed: list[str]) -> bool:
    """MLflow's own rule: exact match, or fnmatch where the pattern has a '*'."""
    host = host.lower()
    return any(fnmatch.fnmatch(host, p) if "*" in p else host == p for p in allowed)


class DockerDatabaseSettings(DatabaseSettings):
    image: PinnedImage = POSTGRES_IMAGE


class DockerArtifactStoreSettings(ConfigModel):
    bucket: BucketName = "mlflow"
    image: PinnedImage = MINIO_IMAGE


class ProxySettings(ConfigModel):
    """nginx in front of MLflow: the only published port."""

    port: Port = 8080
    # Loopback by default: nothing on the LAN reaches the server unless asked for.
    bind_address: IPvAnyAddress = ipaddress.IPv4Address("127.0.0.1")
    max_upload_size: ByteSize = 10 * 1024**3
    # Seconds nginx waits on a slow client or a slow MLflow (multi-GB artifacts).
    timeout_seconds: int = Field(default=3600, ge=60, le=86400)
    username: str = Field(default="mlflow", pattern=r"^[A-Za-z0-9._-]{1,64}$")
    # Serve HTTPS with a certificate the program generates (self-signed).
    tls: bool = False
    tls_hostnames: list[str] = Field(default_factory=lambda: ["localhost"], min_length=1)
    image: PinnedImage = NGINX_IMAGE


class DockerHostSettings(ConfigModel):
    # The Docker engine to deploy to; passed to an explicit provider, never taken from the ambient env.
    host: str = Field(default="unix:///var/run/docker.sock", pattern=r"^(unix|tcp|ssh|npipe)://")
    # Volumes outlive `pulumi destroy` unless this is false.
    keep_data_on_destroy: bool = True


class DockerSettings(ConfigModel):
    target: Literal["docker"]
    tracking: TrackingSettings = Field(default_factory=TrackingSettings)
    database: DockerDatabaseSettings = Field(default_factory=DockerDatabaseSettings)
    artifact_store: DockerArtifactStoreSettings = Field(default_factory=DockerArtifactStoreSettings)
    proxy: ProxySettings = Field(default_factory=ProxySettings)
    docker: DockerHostSettings = Field(default_factory=DockerHostSettings)

    def semantic_problems(self) -> list[tuple[str, str]]:
        """Rules across keys, as (key path, reason)."""
        problems = self.tracking.semantic_problems()
        if self.tracking.artifacts == "direct":
            problems.append((
                "tracking.artifacts",
                "'direct' needs clients to reach the S3 endpoint, but a docker stack publishes only "
                "the proxy; use 'proxied'",
            ))
        if not self.proxy.tls and not self.proxy.bind_address.is_loopback:
            problems.append((
                "proxy.bindAddress",
                f"{self.proxy.bind_address} publishes basic auth over plain HTTP beyond this machine; "
                "set proxy.tls: true or bind to 127.0.0.1",
            ))
        if self.proxy.tls:
            for host in self.proxy.tls_hostnames:
                if not is_allowed_host(host, self.tracking.allowed_hosts):
                    problems.append((
                        "proxy.tlsHostnames",
                        f"'{host}' is not in tracking.allowedHosts, so MLflow would refuse every request for it",
                    ))
        return problems
