"""Garbage collection of deleted runs, experiments and logged models: one command for both stacks.

Pure data, like the server's spec: the dev stack runs it with `docker exec` in the MLflow
container (`make gc`), the prod stack as a scheduled ECS task from the same image (`gc_spec`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from components.specs.endpoints import ArtifactEndpoint, DatabaseEndpoint
from components.specs.image_layout import SCRATCH_DIR
from components.specs.mlflow_server import store_env
from images.mlflow import server_contract as contract

GC_MODULE = "mlflow_gc"


def gc_command(older_than: str | None) -> tuple[str, ...]:
    """The whole argv of one garbage collection, run in the MLflow image (`PYTHONPATH=/app`).

    Contract:
    - It runs `images/mlflow/mlflow_gc.py`, not `mlflow gc` itself: that module resolves the
      proxied `mlflow-artifacts:/` URIs against the bucket, which `mlflow gc` alone cannot do
      without an HTTP server, builds the database URI from the environment (`mlflow gc` has no
      variable for it: the password would be on the command line), and empties the locations of
      experiments it hard-deletes.
    - It replaces the image's entrypoint (the boot module): gc never migrates a schema.
    - Its environment is the server's database and S3 settings, the secrets as NAME or NAME_FILE
      (the server role's password: gc only deletes rows; S3 keys where the store has static ones),
      plus `gc_env(artifacts)`.
    - `older_than` is MLflow's `#d#h#m#s` form (`30d`, `12h`, `0s`, validated by the config's
      `gc.olderThan`) and goes to `--older-than`: only what was deleted at least that long ago is
      removed. None removes everything in the `deleted` stage, whatever its age.
    - Nothing secret is on it, and it is the same for every run of a given config.
    """
    command: tuple[str, ...] = ("python", "-m", GC_MODULE)
    if older_than is not None:
        command += ("--older-than", older_than)
    return command


def gc_env(artifacts: ArtifactEndpoint) -> dict[str, str]:
    """What gc needs beyond the server's environment: where the proxied artifacts live (the
    server's `--artifacts-destination`, `ArtifactEndpoint.root`)."""
    return {contract.ARTIFACTS_DESTINATION: artifacts.root}


@dataclass(frozen=True)
class GcSpec:
    """One gc run as a one-off container runs it (prod's scheduled task): no port, no health
    check, exits when done."""

    argv: tuple[str, ...]
    # Plain settings: no secret here.
    env: Mapping[str, str]
    # Names the runtime provides secretly (NAME_FILE on Docker, an ECS secret on AWS).
    secret_env: tuple[str, ...]
    scratch_dir: str


def gc_secret_names(*, static_s3_credentials: bool) -> tuple[str, ...]:
    """The secrets gc is handed: the server role's password, and the S3 keys where the store has
    some; no owner, auth or encryption key."""
    names = (contract.DB_PASSWORD,)
    return (*names, contract.S3_ACCESS_KEY_ID, contract.S3_SECRET_ACCESS_KEY) if static_s3_credentials else names


def gc_spec(older_than: str | None, database: DatabaseEndpoint, artifacts: ArtifactEndpoint,
            scratch_dir: str = SCRATCH_DIR) -> GcSpec:  # fmt: skip
    """gc against the stores the server uses, signed in as the server's role."""
    env = {**store_env(database, artifacts, scratch_dir), **gc_env(artifacts)}
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
