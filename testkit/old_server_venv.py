"""An older MLflow 3.x server venv for the upgrade tests, built from pins committed in the repo
and cached outside it (testkit.venvs.cached_venv), as the image's venv is built.
$MLFLOW_OLD_SERVER_VENV overrides the path."""

from __future__ import annotations

import os
from pathlib import Path

from testkit.server_venv import REPO_ROOT, ServerVenvError
from testkit.venvs import VenvBuildError, cached_venv

PINS = REPO_ROOT / "tests" / "e2e" / "upgrade_from" / "mlflow-3.0.0.pins"
NAME = "mlflow-server-3.0.0"


def require_old_server_venv(pins: Path = PINS) -> Path:
    """The venv, built first if this machine has none for these pins."""
    given = os.environ.get("MLFLOW_OLD_SERVER_VENV")
    if given:
        return Path(given).expanduser().resolve()
    try:
        return cached_venv(pins, NAME)
    except VenvBuildError as error:
        raise ServerVenvError(str(error)) from None
