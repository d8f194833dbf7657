"""Garbage collection of deleted runs, experiments and logged models: one command for both stacks.

Pure data, like the server's spec: the dev stack runs it with `docker exec` in the MLflow
container (`make gc`), the prod stack as a scheduled ECS task from the same image.
"""

from __future__ import annotations

from components.specs.endpoints import ArtifactEndpoint
from images.mlflow import server_contract as contract

GC_MODULE = "mlflow_gc"


def gc_command(older_than: str | None) -> tuple[str, ...]:
    """The whole argv of one garbage collection, run in the MLflow image (`PYTHONPATH=/app`).

    Contract:
    - It runs `images/mlflow/mlflow_gc.py`, not `mlflow gc` itself: that module resolves the
      proxied `mlflow-artifacts:/` URIs against the bucket, which `mlflow gc` alone cannot do
      without an HTTP server, and empties the locations of experiments it hard-deletes.
    - It replaces the image's entrypoint (the boot module): gc never migrates a schema.
    - Its environment is the server's (`ServerSpec.env` and the secrets as NAME or NAME_FILE:
      the database settings, the server role's password, S3 access) plus `gc_env(artifacts)`.
    - `older_than` is MLflow's `#d#h#m#s` form (`30d`, `12h`, `0s`) and goes to `--older-than`:
      only what was deleted at least that long ago is removed. None removes everything in the
      `deleted` stage, whatever its age.
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
