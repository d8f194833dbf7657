"""An older MLflow 3.x server venv for the upgrade tests, built from pins committed in the repo
and cached outside it (~/.cache/mlflow-platform/, keyed by the pins' hash), as the image's venv is
built (testkit/venvs.py). $MLFLOW_OLD_SERVER_VENV overrides the path."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from testkit.server_venv import REPO_ROOT, ServerVenvError
from testkit.venvs import VenvBuildError, build_venv

PINS = REPO_ROOT / "tests" / "e2e" / "upgrade_from" / "mlflow-3.0.0.pins"
STAMP = ".installed"


def old_server_venv_path(pins: Path = PINS) -> Path:
    given = os.environ.get("MLFLOW_OLD_SERVER_VENV")
    if given:
        return Path(given).expanduser().resolve()
    digest = hashlib.sha256(pins.read_bytes()).hexdigest()[:12]
    return Path.home() / ".cache" / "mlflow-platform" / f"venv-{pins.stem}-{digest}"


def require_old_server_venv(pins: Path = PINS) -> Path:
    """The venv, built first if its stamp (the pins' own text) is missing or different."""
    venv = old_server_venv_path(pins)
    stamp = venv / STAMP
    if stamp.exists() and stamp.read_text() == pins.read_text():
        return venv
    try:
        build_venv(venv, pins)
    except VenvBuildError as error:
        raise ServerVenvError(str(error)) from None
    stamp.write_text(pins.read_text())
    return venv
