"""Fake executables for tests that must not depend on what is installed: a `docker` CLI above all.

The program (components/docker/engine.py) and `make doctor` ask the docker CLI two things:
`docker context inspect --format ...` (the endpoint) and `docker --host H version --format ...`
(the engine's version, or its `{{.Server.Os}}/{{.Server.Arch}}`).
"""

from __future__ import annotations

from pathlib import Path

COLIMA_SOCKET = "unix:///Users/me/.colima/default/docker.sock"
CANNOT_CONNECT = 'echo "Cannot connect to the Docker daemon at $2. Is the docker daemon running?" >&2; exit 1'


def fake(bin_dir: Path, name: str, body: str) -> Path:
    """An executable shell script `bin_dir/name` running `body`."""
    path = bin_dir / name
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(0o755)
    return path


def fake_docker(
    bin_dir: Path,
    context: str = COLIMA_SOCKET,
    engine_platform: str | None = "linux/arm64",
    engine_version: str = "28.5.1",
) -> Path:
    """`context inspect` prints `context`; `--host H version` prints the engine's OS/arch (a format
    naming Arch) or its version, or cannot connect (engine_platform=None). Every call is
    appended to bin_dir/docker.log."""
    answer = (
        f'case "$5" in *Arch*) echo "{engine_platform}";; *) echo "{engine_version}";; esac; exit 0'
        if engine_platform
        else CANNOT_CONNECT
    )
    return fake(
        bin_dir,
        "docker",
        f"""echo "$*" >> "{bin_dir / "docker.log"}"
if [ "$1" = context ] && [ "$2" = inspect ]; then echo "{context}"; exit 0; fi
if [ "$1" = --host ] && [ "$3" = version ]; then {answer}; fi
exit 1""",
    )


def docker_calls(bin_dir: Path) -> list[str]:
    log = bin_dir / "docker.log"
    return log.read_text().splitlines() if log.exists() else []
