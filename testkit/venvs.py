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

import concurrent.futures
import fcntl
import hashlib
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


def cache_root() -> Path:
    """Where venvs built for the tests are kept between sessions: outside the repo, per machine."""
    base = os.environ.get("MLFLOW_PLATFORM_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "mlflow-platform"
    )
    return Path(base)


def cached_venv_path(pins: Path, name: str) -> Path:
    digest = hashlib.sha256(pins.read_bytes()).hexdigest()[:12]
    return cache_root() / "venvs" / f"{name}-{digest}"


def cached_venv(pins: Path, name: str) -> Path:
    """A venv of exactly `pins`, built on first use and reused while the pins are the same (the
    path carries their hash). Two builders of one venv (sessions, or a test and the background
    prebuild) wait for each other on a lock file rather than build it twice."""
    venv = cached_venv_path(pins, name)
    done = venv / ".complete"
    if done.exists():
        return venv
    venv.parent.mkdir(parents=True, exist_ok=True)
    with open(venv.parent / f"{venv.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not done.exists():
            build_venv(venv, pins)
            done.write_text(pins.read_text())
    return venv


_prebuilds = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="venv-prebuild")


def prebuild(pins: Path, name: str) -> None:
    """Start building a cached venv in the background (one at a time), so a test that needs it
    later finds it ready: on a fresh machine the old MLflow venvs take minutes, mostly downloads.
    A failure is not raised here: the test's own cached_venv() call builds again and says why."""
    if not (cached_venv_path(pins, name) / ".complete").exists():
        _prebuilds.submit(cached_venv, pins, name)
