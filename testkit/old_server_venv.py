"""An older MLflow 3.x server venv for the upgrade tests, built from pins committed in the repo
and cached outside it (~/.cache/mlflow-platform/, keyed by the pins' hash), as the image's venv is
built: `pip install --no-deps -r <pins> && pip check`. $MLFLOW_OLD_SERVER_VENV overrides the path."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

from testkit.server_venv import REPO_ROOT, ServerVenvError

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
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True, capture_output=True)
        pip = [str(venv / "bin" / "python"), "-m", "pip", "--disable-pip-version-check", "--quiet"]
        subprocess.run([*pip, "install", "--no-deps", "-r", str(pins)], check=True, capture_output=True, text=True)
        subprocess.run([*pip, "check"], check=True, capture_output=True, text=True)
    except subprocess.CalledProcessError as error:
        raise ServerVenvError(f"cannot build {venv} from {pins}: {error.stderr or error.stdout}") from None
    stamp.write_text(pins.read_text())
    return venv
