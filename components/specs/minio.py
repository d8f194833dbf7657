"""MinIO for the dev stack's artifacts: settings, health check, the credentials file and the KMS
key that encrypts every object at rest."""

from __future__ import annotations

import base64
import binascii
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
# Encryption at rest. mlflow_boot sets SSE-S3 as the bucket's default encryption; MinIO then
# seals each object's own key with its KMS key, here a static one: `<name>:<base64 of 32 bytes>`
# (internal/kms/secret-key.go, ParseSecretKey/NewBuiltin, at the pinned release), read from the
# file MINIO_KMS_SECRET_KEY_FILE names (internal/kms/config.go): a file, never the env. Without a
# KMS MinIO refuses the bucket encryption (`KMSNotConfigured`), so a missing key stops the boot.
KMS_SECRET_KEY_FILE = "/run/secrets/minio-kms-key"
# Recorded in every encrypted object's metadata: renaming it makes those objects unreadable.
KMS_KEY_NAME = "mlflow-dev-sse"
KMS_KEY_BYTES = 32
# observability on: MinIO's v2 bucket metrics on its S3 port, for Prometheus on the backend network
# (docs/metrics/prometheus/list.md of minio/minio: the bucket metrics, at this path). The scrape
# signs nothing: MINIO_PROMETHEUS_AUTH_TYPE=public, as nothing outside the internal network reaches
# the port; MinIO's other choice, a JWT signed with the root secret, would put that in the scrape config.
METRICS_PATH = "/minio/v2/metrics/bucket"
BUCKET_SIZE_METRIC = "minio_bucket_usage_total_bytes"


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
    kms_secret_key_file: str = KMS_SECRET_KEY_FILE
    metrics_path: str | None = None
    """Where Prometheus scrapes the bucket metrics on `port` (observability on), else None."""


def minio_spec(store: DockerArtifactStoreSettings, *, monitored: bool = False) -> MinioSpec:
    env = {
        "MINIO_CONFIG_ENV_FILE": CONFIG_ENV_FILE,
        "MINIO_REGION": REGION,
        # No web console: nothing but MLflow talks to MinIO, and the port is never published.
        "MINIO_BROWSER": "off",
        # A path, not the key (the image's own default names a missing /run/secrets/kms_master_key).
        "MINIO_KMS_SECRET_KEY_FILE": KMS_SECRET_KEY_FILE,
    }
    if monitored:
        env["MINIO_PROMETHEUS_AUTH_TYPE"] = "public"
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
        metrics_path=METRICS_PATH if monitored else None,
    )


def minio_config_env(access_key: str, secret_key: str) -> str:
    """The credentials file's text (shell env syntax, values single-quoted)."""
    for value in (access_key, secret_key):
        if "'" in value or "\n" in value:
            raise ValueError("MinIO credentials cannot contain quotes or newlines")
    return f"MINIO_ROOT_USER='{access_key}'\nMINIO_ROOT_PASSWORD='{secret_key}'\n"


def minio_kms_secret_key(key_base64: str) -> str:
    """The KMS key file's text: `<KMS_KEY_NAME>:<key>`, the key being KMS_KEY_BYTES bytes in
    standard base64 (what random.RandomBytes gives). No newline: MinIO parses the file as is."""
    try:
        raw = base64.b64decode(key_base64, validate=True)
    except binascii.Error as error:
        raise ValueError(f"MinIO's KMS key must be standard base64: {error}") from None
    if len(raw) != KMS_KEY_BYTES:
        raise ValueError(f"MinIO's KMS key is {KMS_KEY_BYTES} bytes, not {len(raw)}")
    return f"{KMS_KEY_NAME}:{key_base64}"
