"""`make up` on the dev stack, before `pulumi up`: when the running servers' MLflow differs from
the pin (`tracking.mlflowVersion`, images/mlflow/requirements.txt), follow MLflow's upgrade rule
(every writer stopped, a restorable backup first) with containers:

1. back up (`make backup`, when this tree has it; else refuse unless UPGRADE_WITHOUT_BACKUP=1);
2. stop every server container of the stack (they are the only writers);
3. `pulumi up` (the Makefile's next step) starts the new image's servers; the first to boot upgrades
   the schema under the advisory lock (MLFLOW_BOOT_SCHEMA=migrate), once, and the others find it
   current.

    python -m tools.dev_upgrade --stack dev      # exit 0: nothing to do or done; 1: refused

The running version is read from the containers' image tags (`mlflow-platform/mlflow:<version>-<hash>`,
components/image.py). Standard library only, like `make doctor`.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from collections.abc import Sequence

from components.docker.engine import docker_cli
from components.versions import REPO_ROOT, pinned_mlflow_version

DEV_IMAGE = "mlflow-platform/mlflow"


def running_servers(docker: str, stack: str) -> list[tuple[str, str]]:
    """(container name, image) of the stack's running MLflow servers (`mlflow-<stack>-mlflow-<i>`)."""
    listed = subprocess.run(
        [docker, "ps", "--filter", f"name=^mlflow-{stack}-mlflow-[0-9]+$", "--format", "{{.Names}}\t{{.Image}}"],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return [tuple(line.split("\t", 1)) for line in listed.splitlines() if "\t" in line]  # type: ignore[misc]


def image_version(image: str) -> str | None:
    """The MLflow version in a dev image's tag, None for an image that is not ours."""
    name, _, tag = image.rpartition(":")
    if name != DEV_IMAGE or "-" not in tag:
        return None
    return tag.split("-", 1)[0]


def to_stop(servers: Sequence[tuple[str, str]], pinned: str) -> list[str]:
    """The servers to stop before `pulumi up`: all of them as soon as one runs another version
    (a server of the old version must not write while the new one migrates), else none."""
    if any(image_version(image) != pinned for _, image in servers):
        return [name for name, _ in servers]
    return []


def has_make_target(target: str) -> bool:
    return subprocess.run(["make", "-n", target], cwd=REPO_ROOT, capture_output=True).returncode == 0


def main(argv: list[str] | None = None, environ=None) -> int:
    import os

    environ = os.environ if environ is None else environ
    parser = argparse.ArgumentParser(prog="python -m tools.dev_upgrade")
    parser.add_argument("--stack", default="dev")
    args = parser.parse_args(argv)
    docker = docker_cli()
    if docker is None:
        return 0  # `make doctor` has already said there is no engine
    servers = running_servers(docker, args.stack)
    pinned = pinned_mlflow_version()
    names = to_stop(servers, pinned)
    if not names:
        return 0
    versions = sorted({image_version(image) or image for _, image in servers})
    print(f"MLflow upgrade: running {', '.join(versions)}, pinned {pinned}: backup, stop the servers, then up")
    if has_make_target("backup"):
        subprocess.run(["make", "backup", f"STACK={args.stack}"], cwd=REPO_ROOT, check=True)
    elif environ.get("UPGRADE_WITHOUT_BACKUP") != "1":
        print("refusing: this tree has no `make backup`; back up the database and the bucket first "
              "(docs/operations.md), then rerun with UPGRADE_WITHOUT_BACKUP=1", file=sys.stderr)  # fmt: skip
        return 1
    subprocess.run([docker, "stop", *names], check=True, capture_output=True)
    print(f"stopped {', '.join(names)}; `pulumi up` starts {pinned}, whose first server upgrades the schema once")
    return 0


if __name__ == "__main__":
    sys.exit(main())
