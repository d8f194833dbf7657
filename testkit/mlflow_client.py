"""Point the in-process `mlflow` client at a server for a block, and put back exactly what was there.

The client's target is process-wide state in four places: the tracking and registry URI
globals, and the MLFLOW_TRACKING_URI / MLFLOW_REGISTRY_URI variables that
`mlflow.set_tracking_uri` / `set_registry_uri` also write (and that `set_registry_uri(None)`
never clears). Saving what `get_registry_uri()` returns and setting it back pins the registry
to whatever the tracking URI was then: a later test's `log_model(registered_model_name=...)`
then registers on another test's server (seen as a 401 from the wrong nginx). So the raw
state is saved and restored instead.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping

# The client also reads these from the environment on every request.
CLIENT_ENV = (
    "MLFLOW_TRACKING_URI",
    "MLFLOW_REGISTRY_URI",
    "MLFLOW_TRACKING_USERNAME",
    "MLFLOW_TRACKING_PASSWORD",
    "MLFLOW_TRACKING_TOKEN",
    "MLFLOW_TRACKING_SERVER_CERT_PATH",
    "MLFLOW_WORKSPACE",
)


def _globals():
    # Private: mlflow has no public API to read whether a URI was set, or to unset the registry's.
    from mlflow.tracking._model_registry import utils as registry
    from mlflow.tracking._tracking_service import utils as tracking
    from mlflow.utils import workspace_context

    return tracking, registry, workspace_context


def client_state() -> dict[str, str | None]:
    """Everything that decides where the in-process client sends its calls, as plain data."""
    tracking, registry, workspace = _globals()
    state: dict[str, str | None] = {name: os.environ.get(name) for name in CLIENT_ENV}
    state["tracking URI global"] = tracking._tracking_uri
    state["registry URI global"] = registry._registry_uri
    state["workspace of this thread"] = workspace._WORKSPACE.get()
    return state


def restore_client_state(state: Mapping[str, str | None]) -> None:
    import mlflow

    tracking, registry, workspace = _globals()
    # Through the setter: it also resets the tracer provider, which caches the old URI.
    mlflow.set_tracking_uri(state["tracking URI global"])  # type: ignore[arg-type]
    registry._registry_uri = state["registry URI global"]
    workspace._WORKSPACE.set(state["workspace of this thread"])
    for name in CLIENT_ENV:  # last: the setters above write some of these
        value = state[name]
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


@contextlib.contextmanager
def pointed_at(uri: str, env: Mapping[str, str] | None = None) -> Iterator[None]:
    """Tracking and registry on `uri`, with `env` (credentials, CA path) for the block."""
    import mlflow

    saved = client_state()
    try:
        os.environ.update(env or {})
        mlflow.set_tracking_uri(uri)
        mlflow.set_registry_uri(uri)
        yield
    finally:
        restore_client_state(saved)
