"""Old MLflow clients in their own venvs, for sources written by the real thing rather than
synthesized rows. Each version's exact pins are committed (old_mlflow/mlflow-<version>.txt, a
`pip freeze` of a working install on Python 3.11); the venv is built from PyPI on first use under
~/.cache/mlflow-platform/old-mlflow/<version>-<hash of the pins> and reused after that, so CI
pays for it once per machine (or per cache restore) and a pin change builds a new one.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import subprocess
from pathlib import Path

from testkit.venvs import VenvBuildError, build_venv

HERE = Path(__file__).resolve().parent / "old_mlflow"
WRITER = HERE / "writer.py"
# 1.30.1 is the last 1.x; 2.16.2 needs sqlalchemy<2.1 to import (pinned in its file).
VERSIONS = ("1.30.1", "2.16.2")


def cache_root() -> Path:
    base = os.environ.get("MLFLOW_PLATFORM_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "mlflow-platform"
    )
    return Path(base) / "old-mlflow"


def requirements(version: str) -> Path:
    return HERE / f"mlflow-{version}.txt"


def venv_python(version: str) -> Path:
    """The venv's python, building the venv first if this machine has none for these pins."""
    pins = requirements(version)
    digest = hashlib.sha256(pins.read_bytes()).hexdigest()[:12]
    root = cache_root()
    path = root / f"{version}-{digest}"
    python = path / "bin" / "python"
    done = path / ".complete"
    if done.exists():
        return python
    root.mkdir(parents=True, exist_ok=True)
    with open(root / f"{version}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # two sessions building the same venv wait for each other
        if done.exists():
            return python
        try:
            build_venv(path, pins)
        except VenvBuildError as error:
            raise RuntimeError(f"building the MLflow {version} venv failed: {error}") from None
        done.write_text(version)
    return python


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
