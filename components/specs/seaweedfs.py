"""SeaweedFS for the dev stack's artifacts (artifactStore.engine: seaweedfs): the `weed mini`
S3 server the end-to-end tests run (testkit/s3.py), in its image: command, health check, the S3
identities file and the security.toml that holds the KEK of its server-side encryption.

Stdlib only at import time: testkit/s3.py builds its identities file with `s3_identities` too.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING

from components.specs.health import HealthCheck

if TYPE_CHECKING:
    from components.config.docker import DockerArtifactStoreSettings

PORT = 8333
DATA_DIR = "/data"
# `-s3.config`: the SigV4 identities, read at start; the keys never sit in env or command.
IDENTITIES_FILE = "/run/secrets/s3-identities.json"
REGION = "us-east-1"
# The image's entrypoint (docker/Dockerfile.go_build, docker/entrypoint.sh): started as root, it
# chowns /data to the `seaweed` user if needed, re-executes itself as that user with su-exec,
# and runs `weed -logtostderr=true mini <args>`.
ENTRYPOINT = ("/entrypoint.sh",)
# `adduser -D -u 1000 -G seaweed seaweed` in that Dockerfile (no USER line: the image starts as
# root); `weed` runs as this uid, so the identities file is its own.
WEED_UID = "1000"
# Encryption at rest. mlflow_boot sets SSE-S3 as the bucket's default encryption; SeaweedFS then
# encrypts each object with its own AES-256 data key and stores that key wrapped by a KEK:
# `s3.sse.kek`, 32 bytes in hex (weed/s3api/s3_sse_s3.go, SSES3KeyManager.InitializeWithFiler).
# viper reads security.toml from `.`, $HOME/.seaweedfs, /usr/local/etc/seaweedfs/ and
# /etc/seaweedfs/ (weed/util/config.go); the image's WORKDIR is /data and it ships
# /etc/seaweedfs/filer.toml (docker/Dockerfile.go_build), so the file goes there, off the volume.
# Given no KEK, `weed mini` draws one into <dir>/.mini_sse_kek (weed/command/mini.go,
# ensureMiniDevSSES3Keys): on the data volume, beside what it protects.
SECURITY_FILE = "/etc/seaweedfs/security.toml"
SSE_KEK_BYTES = 32
IDENTITY_NAME = "mlflow"
# The actions SeaweedFS knows; "Admin" alone would do, the rest is explicit.
ADMIN_ACTIONS = ("Admin", "Read", "List", "Tagging", "Write")
# observability on: every component's Prometheus series on one port (`weed mini -metricsPort`,
# on -ip.bind), the S3 gateway's bucket sizes among them, refreshed about once a minute.
METRICS_PORT = 9327
METRICS_PATH = "/metrics"
BUCKET_SIZE_METRIC = "SeaweedFS_s3_bucket_size_bytes"


@dataclass(frozen=True)
class SeaweedfsSpec:
    image: str
    entrypoint: tuple[str, ...]
    command: tuple[str, ...]
    health: HealthCheck
    bucket: str
    port: int = PORT
    data_dir: str = DATA_DIR
    identities_file: str = IDENTITIES_FILE
    security_file: str = SECURITY_FILE
    file_owner: str = WEED_UID
    metrics_port: int | None = None
    """Where Prometheus scrapes its series (observability on), else None."""


def seaweedfs_spec(store: DockerArtifactStoreSettings, *, monitored: bool = False) -> SeaweedfsSpec:
    command = (
        # The subcommand and S3 options of testkit/s3.py; its local ports and sockets aside.
        "mini",
        f"-dir={DATA_DIR}",
        # Components reach each other on loopback (a stable identity, whatever address Docker
        # gives the container); they listen on every interface so MLflow reaches S3. The other
        # ports (master, volume, filer, admin) have no auth of their own: nothing publishes them,
        # and the backend network is internal, as loopback is for the tests.
        "-ip=127.0.0.1",
        "-ip.bind=0.0.0.0",
        f"-s3.port={PORT}",
        f"-s3.config={IDENTITIES_FILE}",
        "-s3.port.iceberg=0",
        "-s3.port.lance=0",
        "-webdav=false",
        "-admin.ui=false",
        "-master.telemetry=false",  # never phone home
        *((f"-metricsPort={METRICS_PORT}",) if monitored else ()),
    )
    health = HealthCheck(
        # Answers 200 without auth once the S3 API serves; curl ships in the image.
        command=("curl", "-fsS", "-o", "/dev/null", "--max-time", "4", f"http://127.0.0.1:{PORT}/healthz"),
        interval_seconds=5,
        timeout_seconds=5,
        retries=10,
        start_period_seconds=10,
    )
    assert store.image is not None, "the settings validator fills in the engine's pinned image"
    return SeaweedfsSpec(
        image=store.image,
        entrypoint=ENTRYPOINT,
        command=command,
        health=health,
        bucket=store.bucket,
        metrics_port=METRICS_PORT if monitored else None,
    )


def s3_identities(access_key: str, secret_key: str, name: str = IDENTITY_NAME) -> str:
    """The `-s3.config` file's text: one identity allowed everything, with one SigV4 key pair."""
    for value in (name, access_key, secret_key):
        if not value:
            raise ValueError("SeaweedFS identities need a name, an access key and a secret key")
    config = {
        "identities": [
            {
                "name": name,
                "credentials": [{"accessKey": access_key, "secretKey": secret_key}],
                "actions": list(ADMIN_ACTIONS),
            }
        ]
    }
    return json.dumps(config, indent=2)


def security_toml(kek_hex: str) -> str:
    """security.toml with the SSE-S3 KEK only (SSE_KEK_BYTES bytes, lowercase hex)."""
    try:
        raw = bytes.fromhex(kek_hex)
    except ValueError:
        raise ValueError("SeaweedFS's SSE-S3 KEK must be hex") from None
    if len(raw) != SSE_KEK_BYTES:
        raise ValueError(f"SeaweedFS's SSE-S3 KEK is {SSE_KEK_BYTES} bytes, not {len(raw)}")
    return f'[s3.sse]\nkek = "{kek_hex}"\n'
