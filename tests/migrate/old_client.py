"""Old MLflow clients in their own venvs, for sources written by the real thing rather than
synthesized rows. Each version's exact pins are committed (old_mlflow/mlflow-<version>.txt, a
`pip freeze` of a working install on Python 3.11); the venv is built from PyPI on first use
(testkit.venvs.cached_venv: keyed by the pins' hash, outside the repo) and reused after that, so CI
pays for it once per machine (or per cache restore) and a pin change builds a new one.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from testkit.venvs import VenvBuildError, cached_venv

HERE = Path(__file__).resolve().parent / "old_mlflow"
WRITER = HERE / "writer.py"
# 1.30.1 is the last 1.x; 2.16.2 needs sqlalchemy<2.1 to import (pinned in its file).
VERSIONS = ("1.30.1", "2.16.2")


def requirements(version: str) -> Path:
    return HERE / f"mlflow-{version}.txt"


def venv_name(version: str) -> str:
    return f"mlflow-client-{version}"


def venv_python(version: str) -> Path:
    """The venv's python, building the venv first if this machine has none for these pins."""
    try:
        return cached_venv(requirements(version), venv_name(version)) / "bin" / "python"
    except VenvBuildError as error:
        raise RuntimeError(f"building the MLflow {version} venv failed: {error}") from None


def write_source(version: str, directory: Path) -> dict:
    """Run the old client in `directory` (the user's project folder): it leaves mlflow.db and
    mlruns/ there and returns its manifest of what it wrote, as the old client reads it back."""
    directory.mkdir(parents=True, exist_ok=True)
    manifest = directory / "manifest.json"
    env = {
        "PATH": f"{venv_python(version).parent}:/usr/bin:/bin",
        "HOME": str(directory),
        "LANG": "C.UTF-8",
        "GIT_PYTHON_REFRESH": "quiet",  # no git here: MLflow 1.x would warn on every run
    }
    result = subprocess.run(
        [str(venv_python(version)), str(WRITER), str(manifest)],
        cwd=directory,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    if result.returncode != 0:
        raise RuntimeError(f"the MLflow {version} client failed:\n{result.stdout}{result.stderr}")
    return json.loads(manifest.read_text())
