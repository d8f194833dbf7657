"""The MLflow server's own virtualenv, built from the image's locked requirements.

The server image pins a closure (images/mlflow/requirements.txt) that conflicts
with the test environment (protobuf), so the e2e tests run the server from a
separate venv with exactly the Dockerfile's closure (`--no-deps -r requirements.txt`, then a
dependency check; testkit/venvs.py says why uv builds it). `make server-venv` builds it; the
check below compares what is installed with every pin, so a venv left over
from an older lock is caught whoever built it.

    python -m testkit.server_venv check    # exit 1 with the reason if unusable
    python -m testkit.server_venv create   # same steps as `make server-venv`
"""

from __future__ import annotations

import os
import re
import sys
from importlib import metadata
from pathlib import Path

from testkit.venvs import VenvBuildError, build_venv

__all__ = [
    "REPO_ROOT",
    "REQUIREMENTS",
    "ServerVenvError",
    "create_server_venv",
    "require_server_venv",
    "server_venv_path",
]

REPO_ROOT = Path(__file__).resolve().parent.parent
REQUIREMENTS = REPO_ROOT / "images" / "mlflow" / "requirements.txt"
DEFAULT_PATH = REPO_ROOT / ".venv-mlflow-server"
ENV_VAR = "MLFLOW_SERVER_VENV"
HOW_TO_CREATE = "create it with `make server-venv` (or `python -m testkit.server_venv create`)"
# The Makefile's stamp; written by create() too, so make does not rebuild what we built.
MAKE_STAMP = ".installed"


class ServerVenvError(RuntimeError):
    pass


def server_venv_path() -> Path:
    """$MLFLOW_SERVER_VENV, else .venv-mlflow-server/ in the repo root."""
    given = os.environ.get(ENV_VAR)
    return Path(given).expanduser().resolve() if given else DEFAULT_PATH


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _pins(requirements: Path | None = None) -> dict[str, str]:
    """{normalized name: version} of every `name==version` line."""
    requirements = requirements or REQUIREMENTS
    pins = {}
    for line in requirements.read_text().splitlines():
        line = line.split("#")[0].split(";")[0].strip()
        match = re.fullmatch(r"([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?\s*==\s*(\S+)", line)
        if match:
            pins[_normalize(match.group(1))] = match.group(3)
    if not pins:
        raise ServerVenvError(f"{requirements} pins nothing")
    return pins


def _installed(venv: Path) -> dict[str, str]:
    """What the venv's site-packages holds, read from its metadata (no interpreter started)."""
    found: dict[str, str] = {}
    for site in venv.glob("lib/python*/site-packages"):
        for dist in metadata.distributions(path=[str(site)]):
            name = dist.metadata["Name"]
            if name:
                found[_normalize(name)] = dist.version
    return found


def require_server_venv(path: Path | None = None) -> Path:
    """The venv's path if it holds exactly the pinned versions; otherwise
    ServerVenvError saying what is wrong and how to fix it. Never falls back to
    the global mlflow: that would test another closure than the image's."""
    venv = path or server_venv_path()
    where = f"the MLflow server venv at {venv}"
    if not (venv / "bin" / "python").exists() or not (venv / "bin" / "mlflow").exists():
        raise ServerVenvError(f"{where} is missing (set ${ENV_VAR} to use another); {HOW_TO_CREATE}")
    installed = _installed(venv)
    wrong = [
        f"{name} {installed.get(name, 'missing')} (pinned {version})"
        for name, version in sorted(_pins().items())
        if installed.get(name) != version
    ]
    if wrong:
        shown = ", ".join(wrong[:5]) + (f" and {len(wrong) - 5} more" if len(wrong) > 5 else "")
        raise ServerVenvError(
            f"{where} does not match {REQUIREMENTS.relative_to(REPO_ROOT)}: {shown}; delete it and {HOW_TO_CREATE}"
        )
    return venv


def create_server_venv(path: Path | None = None, *, python: str = sys.executable) -> Path:
    """(Re)build the venv from the image's lock (`make server-venv` calls this), unless the one
    there already matches every pin."""
    venv = path or server_venv_path()
    try:
        require_server_venv(venv)
    except ServerVenvError:
        try:
            build_venv(venv, REQUIREMENTS, python=python)
        except VenvBuildError as error:
            raise ServerVenvError(str(error)) from None
    (venv / MAKE_STAMP).touch()
    return require_server_venv(venv)


def _main(argv: list[str]) -> int:
    command = argv[0] if argv else "check"
    try:
        if command == "create":
            print(create_server_venv())
        elif command == "check":
            print(require_server_venv())
        else:
            print(__doc__, file=sys.stderr)
            return 2
    except ServerVenvError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
