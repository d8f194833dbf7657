"""`mlflow gc`: the one command line both targets run (prod's scheduled ECS task, dev's `make gc`).

Pure data. The command goes through the image's boot module (`mlflow_boot gc`), not `mlflow gc`
itself, for two facts of MLflow 3.17's `mlflow gc` (mlflow/cli/__init__.py):
- `--backend-store-uri` has no environment variable, and without it gc opens the tracking URI's
  store: the database URI, with its password, would have to be on the command line. The boot
  module builds it from the environment (the server's role: gc only deletes rows) and calls gc
  in-process.
- a run of a proxied server has an `mlflow-artifacts:/` URI, which gc resolves through an HTTP
  tracking server (with its credentials) or, failing that, stops. The boot module maps that scheme
  onto `MLFLOW_ARTIFACTS_DESTINATION` (the bucket) as the server does, so gc deletes the objects
  itself, with the task's own access to the bucket.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from components.specs.endpoints import ArtifactEndpoint, DatabaseEndpoint
from components.specs.image_layout import SCRATCH_DIR
from images.mlflow import server_contract as contract

# What `mlflow gc --older-than` parses (days, hours, minutes, seconds, in that order; decimals
# allowed), minus the empty string, which MLflow reads as "no threshold".
OLDER_THAN_PATTERN = r"^(?=.)(\d+(\.\d+)?d)?(\d+(\.\d+)?h)?(\d+(\.\d+)?m)?(\d+(\.\d+)?s)?$"
# The variable gc's `--artifacts-destination` reads: where `mlflow-artifacts:/` points.
ARTIFACTS_DESTINATION = "MLFLOW_ARTIFACTS_DESTINATION"


def gc_command(older_than: str) -> tuple[str, ...]:
    """The argv of one collection: every run, logged model and experiment deleted more than
    `older_than` ago (e.g. `30d`, `0s`), rows and artifacts."""
    if not re.fullmatch(OLDER_THAN_PATTERN, older_than):
        raise ValueError(f"{older_than!r} is not an `mlflow gc --older-than` duration such as 30d, 12h or 1d2h30m")
    return ("python", "-m", "mlflow_boot", "gc", "--older-than", older_than)


@dataclass(frozen=True)
class GcSpec:
    """One `mlflow gc` run as a container runs it: no port, no health check, exits when done."""

    argv: tuple[str, ...]
    # Plain settings: no secret here.
    env: Mapping[str, str]
    # Names the runtime provides secretly (NAME_FILE on Docker, an ECS secret on AWS): only the
    # server role's password (and the S3 keys where the store has static ones), no owner, no
    # auth or encryption key: gc deletes rows and objects, nothing else.
    secret_env: tuple[str, ...]
    scratch_dir: str


def gc_secret_names(*, static_s3_credentials: bool) -> tuple[str, ...]:
    """The secrets gc is handed: the server role's password, and the S3 keys where the store has some."""
    names = (contract.DB_PASSWORD,)
    return (*names, contract.S3_ACCESS_KEY_ID, contract.S3_SECRET_ACCESS_KEY) if static_s3_credentials else names


def gc_spec(older_than: str, database: DatabaseEndpoint, artifacts: ArtifactEndpoint,
            scratch_dir: str = SCRATCH_DIR) -> GcSpec:  # fmt: skip
    """gc against the stores the server uses, signed in as the server's role."""
    env = {
        contract.DB_HOST: database.host,
        contract.DB_PORT: str(database.port),
        contract.DB_NAME: database.name,
        contract.DB_USER: database.user,
        contract.DB_SSLMODE: database.sslmode,
        ARTIFACTS_DESTINATION: artifacts.root,
        "AWS_DEFAULT_REGION": artifacts.region,
        "AWS_REGION": artifacts.region,
        # A read-only root filesystem: anything written under $HOME or $TMPDIR lands in scratch.
        "TMPDIR": scratch_dir,
        "HOME": scratch_dir,
        "PYTHONUNBUFFERED": "1",
        "MLFLOW_DISABLE_TELEMETRY": "true",
    }
    if database.sslrootcert:
        env[contract.DB_SSLROOTCERT] = database.sslrootcert
    if artifacts.s3_endpoint_url:
        env["MLFLOW_S3_ENDPOINT_URL"] = artifacts.s3_endpoint_url
    return GcSpec(
        argv=gc_command(older_than),
        env=MappingProxyType(env),
        secret_env=gc_secret_names(static_s3_credentials=artifacts.static_credentials),
        scratch_dir=scratch_dir,
    )
