"""SeaweedFS for the dev stack's artifacts (artifactStore.engine: seaweedfs): the `weed mini`
S3 server the end-to-end tests run (testkit/s3.py), in its image: command, health check and
the S3 identities file.

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
IDENTITY_NAME = "mlflow"
# The actions SeaweedFS knows; "Admin" alone would do, the rest is explicit.
ADMIN_ACTIONS = ("Admin", "Read", "List", "Tagging", "Write")


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
    file_owner: str = WEED_UID


def seaweedfs_spec(store: DockerArtifactStoreSettings) -> SeaweedfsSpec:
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
