"""MinIO for the dev stack's artifacts: settings, health check and the credentials file."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from components.config.docker import DockerArtifactStoreSettings
from components.specs.health import HealthCheck

PORT = 9000
DATA_DIR = "/data"
# MinIO loads MINIO_ROOT_USER / MINIO_ROOT_PASSWORD from this env-style file at start,
# so the root credentials never sit in the container's environment.
CONFIG_ENV_FILE = "/run/secrets/minio.env"
REGION = "us-east-1"


@dataclass(frozen=True)
class MinioSpec:
    image: str
    command: tuple[str, ...]
    env: Mapping[str, str]
    health: HealthCheck
    bucket: str
    port: int = PORT
    data_dir: str = DATA_DIR
    config_env_file: str = CONFIG_ENV_FILE


def minio_spec(store: DockerArtifactStoreSettings) -> MinioSpec:
    env = {
        "MINIO_CONFIG_ENV_FILE": CONFIG_ENV_FILE,
        "MINIO_REGION": REGION,
        # No web console: nothing but MLflow talks to MinIO, and the port is never published.
        "MINIO_BROWSER": "off",
    }
    health = HealthCheck(
        # `mc` ships in the image; `local` is its built-in alias for this server.
        command=("mc", "ready", "local"),
        interval_seconds=5,
        timeout_seconds=5,
        retries=10,
        start_period_seconds=10,
    )
    assert store.image is not None, "the settings validator fills in the engine's pinned image"
    return MinioSpec(
        image=store.image,
        command=("server", DATA_DIR, "--address", f":{PORT}"),
        env=MappingProxyType(env),
        health=health,
        bucket=store.bucket,
    )


def minio_config_env(access_key: str, secret_key: str) -> str:
    """The credentials file's text (shell env syntax, values single-quoted)."""
    for value in (access_key, secret_key):
        if "'" in value or "\n" in value:
            raise ValueError("MinIO credentials cannot contain quotes or newlines")
    return f"MINIO_ROOT_USER='{access_key}'\nMINIO_ROOT_PASSWORD='{secret_key}'\n"
