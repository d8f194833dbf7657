"""One way to build a venv from a lock file, for every venv the tests use: the image's server venv
(`make server-venv`), the older MLflow servers of the upgrade tests and the old clients of the
migration tests.

`uv` (pinned in requirements-dev.txt) installs the same closure the Dockerfile's `pip install
--no-deps -r requirements.txt` does, from the same wheels, with parallel downloads: building the
server venv on a fresh machine took 30 s with uv against 429 s with pip in one measurement
(2 cores, cold caches, a loaded machine). `--no-deps`: each lock file is the whole closure, so
what is installed is exactly what is pinned; `uv pip check` then proves the closure consistent,
as `pip check` does for the image. The venv itself is the stdlib's (`python -m venv`: pip and,
before Python 3.12, setuptools, as in the image's base; old gunicorn declares setuptools). Bytecode is compiled at
install, as pip does, so a server's first start does not pay for it.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path


class VenvBuildError(RuntimeError):
    """A venv could not be built from its lock file (the message carries the installer's output)."""


def _uv() -> str:
    found = shutil.which("uv") or shutil.which("uv", path=str(Path(sys.executable).parent))
    if not found:
        raise VenvBuildError(
            "`uv` is not installed: install the test requirements (pip install -r requirements-dev.txt)"
        )
    return found


def build_venv(venv: Path, requirements: Path, *, python: str = sys.executable) -> Path:
    """Create `venv` afresh (anything there is removed) with `python`, install exactly the pins of
    `requirements` and check them; returns the venv's python."""
    uv = _uv()
    # A PYTHONPATH of the caller (pytest's `pythonpath = .`) must not leak into the new venv.
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    target = venv / "bin" / "python"
    steps = {
        "python -m venv": [python, "-m", "venv", "--clear", str(venv)],
        "uv pip install": [uv, "pip", "install", "--quiet", "--python", str(target), "--no-deps",
                           "--compile-bytecode", "-r", str(requirements)],
        "uv pip check": [uv, "pip", "check", "--python", str(target)],
    }  # fmt: skip
    for label, argv in steps.items():
        done = subprocess.run(argv, capture_output=True, text=True, env=env)
        if done.returncode != 0:
            raise VenvBuildError(
                f"building {venv} from {requirements} failed at `{label}`:\n{done.stdout}{done.stderr}"
            )
    return target
