"""`mlflow gc` for a proxied artifact store, run in the MLflow image (dev container, prod task).

    python -m mlflow_gc [--older-than 30d]       every other `mlflow gc` option passes through

MLflow's own `gc` deletes a run's objects through `get_artifact_repository(run.info.artifact_uri)`.
With `--serve-artifacts` that URI is `mlflow-artifacts:/<experiment>/<run>/artifacts`, which
MLflow (mlflow/store/artifact/mlflow_artifacts_repo.py) resolves only against an http(s) tracking
URI: it sends DELETE to a running server. Against the database URI it raises, and gc stops before
it deletes anything (`--artifacts-destination` does not help: gc hands it to the tracking store as
the default root of new experiments, not to the resolution of existing URIs). So this module:

1. reads the secrets and builds the backend URI as the server does (mlflow_boot, NAME_FILE or
   NAME), signed in as the servers' own role (DML: gc deletes rows, creates nothing); the owner's
   password is dropped first, and nothing is migrated (MLflow's store refuses a schema that is
   not its own version);
2. resolves `mlflow-artifacts:/<path>` to `<MLFLOW_ARTIFACTS_DESTINATION>/<path>`, the mapping the
   server applies to every proxied request (its `--artifacts-destination`), so gc deletes the
   objects in the bucket itself, with the task's or the container's S3 access, no server needed;
3. runs MLflow's own `gc` with the given options;
4. deletes what MLflow's gc leaves behind: hard-deleting an experiment drops its logged models'
   and traces' rows by cascade (ON DELETE CASCADE on experiment_id) but never their objects, which
   live under the experiment's own location (`<experiment>/models/...`, `<experiment>/traces/...`);
   once an experiment is gone from the database, its whole location is emptied.

Standard library plus what the image installs (mlflow) only.
"""

from __future__ import annotations

import logging
import os
import sys
import urllib.parse
from collections.abc import Mapping, MutableMapping, Sequence

from mlflow_boot import BootError, backend_store_uri, load_file_secrets
from server_contract import ARTIFACTS_DESTINATION, DB_OWNER_PASSWORD, FILE_SUFFIX

PROXIED_SCHEME = "mlflow-artifacts"

log = logging.getLogger("mlflow_gc")


def destination_uri(artifact_uri: str, destination: str) -> str:
    """`mlflow-artifacts:/1/abc/artifacts` (or `mlflow-artifacts://host/1/...`) under `destination`
    (`s3://bucket/`) -> `s3://bucket/1/abc/artifacts`, as the server maps each proxied path."""
    parsed = urllib.parse.urlparse(artifact_uri)
    if parsed.scheme != PROXIED_SCHEME:
        raise ValueError(f"not an {PROXIED_SCHEME} URI: {artifact_uri}")
    path = parsed.path.lstrip("/")
    parts = path.split("/")
    if any(part in ("..", ".") for part in parts):
        raise ValueError(f"refusing a relative path in {artifact_uri}")
    return destination.rstrip("/") + "/" + path


def resolve_proxied_uris(destination: str) -> None:
    """Make `mlflow-artifacts:` URIs open the destination's repository, in this process."""
    from mlflow.store.artifact import artifact_repository_registry as registry

    def repository(artifact_uri: str, tracking_uri: str | None = None, registry_uri: str | None = None):
        return registry.get_artifact_repository(destination_uri(artifact_uri, destination))

    registry._artifact_repository_registry.register(PROXIED_SCHEME, repository)


def deleted_experiment_locations(store) -> dict[str, str]:
    """experiment id -> artifact location of every experiment in the `deleted` stage (gc's candidates)."""
    from mlflow.entities import ViewType

    found: dict[str, str] = {}
    token = None
    while True:
        page = store.search_experiments(view_type=ViewType.DELETED_ONLY, page_token=token)
        found.update({e.experiment_id: e.artifact_location for e in page})
        token = page.token
        if not token:
            return found


def experiment_exists(store, experiment_id: str) -> bool:
    from mlflow.exceptions import MlflowException

    try:
        store.get_experiment(experiment_id)
    except MlflowException as error:
        if error.error_code == "RESOURCE_DOES_NOT_EXIST":
            return False
        raise
    return True


def empty_locations(store, candidates: Mapping[str, str]) -> list[str]:
    """Empty the artifact location of each candidate experiment gc removed from the database."""
    from mlflow.store.artifact.artifact_repository_registry import get_artifact_repository

    emptied = []
    for experiment_id, location in sorted(candidates.items()):
        if experiment_exists(store, experiment_id):
            continue  # not old enough for this run of gc, or not deleted after all
        get_artifact_repository(location).delete_artifacts()
        log.info("experiment %s: emptied its artifact location %s", experiment_id, location)
        emptied.append(experiment_id)
    return emptied


def prepare(environ: MutableMapping[str, str]) -> str:
    """Secrets in, owner's password out, backend URI and tracking URI set; returns the destination."""
    load_file_secrets(environ)
    for name in (DB_OWNER_PASSWORD, f"{DB_OWNER_PASSWORD}{FILE_SUFFIX}"):
        environ.pop(name, None)
    destination = environ.get(ARTIFACTS_DESTINATION)
    if not destination:
        raise BootError(f"{ARTIFACTS_DESTINATION} is not set: gc cannot reach the artifacts of proxied runs")
    uri = backend_store_uri(environ)
    environ["MLFLOW_BACKEND_STORE_URI"] = uri
    # gc refuses to run without a tracking URI; the store's own URI keeps it off HTTP.
    environ["MLFLOW_TRACKING_URI"] = uri
    return destination


def run(argv: Sequence[str], environ: MutableMapping[str, str]) -> int:
    destination = prepare(environ)
    resolve_proxied_uris(destination)

    from mlflow.cli import cli
    from mlflow.tracking._tracking_service.utils import _get_store

    store = _get_store(environ["MLFLOW_BACKEND_STORE_URI"])
    candidates = deleted_experiment_locations(store)
    try:
        cli.main(args=["gc", *argv], prog_name="mlflow gc", standalone_mode=False)
    except SystemExit as exit_:  # click's --help
        return int(exit_.code or 0)
    empty_locations(store, candidates)
    return 0


def main(argv: list[str]) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s mlflow_gc %(levelname)s %(message)s")
    try:
        return run(argv, os.environ)
    except BootError as error:
        log.error("%s", error)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
