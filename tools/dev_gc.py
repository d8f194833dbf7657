"""`make gc`: garbage-collect the dev stack, in its running MLflow container.

    python -m tools.dev_gc [--stack dev] [--older-than 30d] [--dry-run]

Runs `components.specs.gc.gc_command()` with `docker exec` in the stack's first MLflow container:
it has the server's environment already (database settings, the secrets as NAME_FILE uploads,
the S3 endpoint and keys), so gc signs in as the servers' role and reaches the bucket as the
server does. `--older-than` defaults to the stack's `gc.olderThan`. `--dry-run` prints the command.
"""

from __future__ import annotations

import argparse
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

from components.config import ConfigError, DockerSettings, parse_settings
from components.docker.engine import resolve_docker_host, server_container_name
from components.specs.endpoints import ArtifactEndpoint
from components.specs.gc import gc_command, gc_env
from components.specs.minio import REGION

PROJECT_DIR = Path(__file__).resolve().parent.parent
NAMESPACE = "mlflow-platform"


def stack_settings(stack: str, project_dir: Path = PROJECT_DIR) -> DockerSettings:
    """The stack's validated settings, read from Pulumi.<stack>.yaml (what the program reads)."""
    document: dict[str, Any] = yaml.safe_load((project_dir / f"Pulumi.{stack}.yaml").read_text()) or {}
    raw = {
        key.partition(":")[2]: value
        for key, value in (document.get("config") or {}).items()
        if key.startswith(f"{NAMESPACE}:")
    }
    settings = parse_settings(raw)
    if not isinstance(settings, DockerSettings):
        raise ConfigError([("target", f"make gc runs on a docker stack; {stack} is target {settings.target}")])
    return settings


def gc_exec_argv(settings: DockerSettings, stack: str, docker_host: str, older_than: str | None) -> list[str]:
    """docker exec of gc_command() in the stack's first MLflow container, with gc_env()."""
    # Only the bucket of the dev stores' endpoint matters to gc_env (its root).
    artifacts = ArtifactEndpoint(bucket=settings.artifact_store.bucket, region=REGION)
    env = [f"--env={name}={value}" for name, value in sorted(gc_env(artifacts).items())]
    container = server_container_name(stack)
    return ["docker", f"--host={docker_host}", "exec", *env, container, *gc_command(older_than)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make gc", description=__doc__.splitlines()[0])
    parser.add_argument("--stack", default="dev")
    parser.add_argument("--older-than", default=None, help="overrides gc.olderThan (e.g. 0s: everything deleted)")
    parser.add_argument("--dry-run", action="store_true", help="print the command, run nothing")
    args = parser.parse_args(argv)
    try:
        settings = stack_settings(args.stack)
        older_than = args.older_than
        if older_than is not None:
            older_than = parse_settings({"target": "docker", "gc": {"olderThan": older_than}}).gc.older_than
    except ConfigError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    host, _ = resolve_docker_host(settings.docker.host)
    command = gc_exec_argv(settings, args.stack, host, older_than if older_than is not None else settings.gc.older_than)
    if args.dry_run:
        print(shlex.join(command))
        return 0
    return subprocess.run(command, check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
