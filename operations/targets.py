"""Where a backup comes from and goes to: how to run PostgreSQL's client tools as the schema
owner, how to run the bucket stream next to the bucket, and how to stop and start the servers.

The dev stack publishes only the proxy, so nothing is reached from the host directly:

- PostgreSQL's tools run inside the postgres container (`docker exec -i <prefix>-postgres`),
  over its Unix socket, where the official image's initdb left `local` connections on `trust`
  (our POSTGRES_INITDB_ARGS set only `--auth-host`; docker-library/postgres docker-entrypoint.sh
  passes them to initdb and appends only a `host all all all` line, and names `--auth-local` as
  the one case where a local connection needs a password): none is needed or passed. The dump
  streams through `docker exec`'s stdout to the host, a restore through its stdin.
- The bucket stream (operations/bucket_stream.py) runs inside an MLflow server container, which
  has boto3, the S3 endpoint and the store's keys (its /run/secrets files). MinIO's image has no
  Python and SeaweedFS's none either; `docker cp` out of the engine's volume would copy its
  encrypted on-disk format, not the objects.

The end-to-end kit's target (testkit/backup_target.py) runs the same tools on 127.0.0.1.
"""

from __future__ import annotations

import re
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

from components.config import DockerSettings, parse_settings

BUCKET_STREAM_SOURCE = Path(__file__).with_name("bucket_stream.py")
HEALTHY_TIMEOUT_SECONDS = 300.0


class OperationError(RuntimeError):
    """An operation refused or failed; the message says why and what to do."""


@dataclass(frozen=True)
class Command:
    argv: list[str]
    env: dict[str, str] | None = None


class Target(Protocol):
    """A running stack, as the backup and restore steps see it."""

    @property
    def name(self) -> str:
        """Names the backup folders (`<name>-<UTC timestamp>`)."""
        ...

    @property
    def database(self) -> str: ...

    @property
    def owner(self) -> str: ...

    @property
    def bucket(self) -> str: ...

    def postgres(self, tool: str, database: str, *args: str) -> Command:
        """`tool` (pg_dump, pg_restore, psql) signed in as the owner on `database`."""
        ...

    def bucket_stream(self, *args: str) -> Command:
        """operations/bucket_stream.py with `args`, run where the bucket is reachable."""
        ...

    def stop_servers(self) -> None: ...

    def start_servers(self) -> None:
        """Start the servers and return once every one is healthy."""
        ...


def bucket_stream_argv(python: str, *args: str) -> list[str]:
    """`python -c <bucket_stream.py> args`: its source in argv (no secret in it), nothing copied."""
    return [python, "-c", BUCKET_STREAM_SOURCE.read_text(), *args]


def read_stack_settings(project_dir: Path, stack: str) -> DockerSettings:
    """The validated settings of Pulumi.<stack>.yaml (a docker stack), read as the program does."""
    import yaml

    from components.config import NAMESPACE

    path = project_dir / f"Pulumi.{stack}.yaml"
    if not path.exists():
        raise OperationError(f"no stack file {path}")
    config = (yaml.safe_load(path.read_text()) or {}).get("config") or {}
    raw = {key.partition(":")[2]: value for key, value in config.items() if key.startswith(f"{NAMESPACE}:")}
    settings = parse_settings(raw)
    if not isinstance(settings, DockerSettings):
        raise OperationError(f"stack {stack!r} is not a docker stack; on AWS see docs/restore.md")
    return settings


@dataclass
class DockerTarget:
    """The dev stack on a Docker engine: containers `<prefix>-postgres` and `<prefix>-mlflow-<i>`
    (components/docker: the platform is named `mlflow-<stack>`, which prefixes every name)."""

    prefix: str
    database: str
    owner: str
    bucket: str
    docker_host: str
    docker: str = "docker"
    healthy_timeout: float = HEALTHY_TIMEOUT_SECONDS
    _servers: list[str] = field(default_factory=list)

    @classmethod
    def for_stack(cls, project_dir: Path, stack: str) -> DockerTarget:
        from components.docker.engine import resolve_docker_host

        settings = read_stack_settings(project_dir, stack)
        host, _ = resolve_docker_host(settings.docker.host)
        return cls(
            prefix=f"mlflow-{stack}",
            database=settings.database.name,
            owner=settings.database.username,
            bucket=settings.artifact_store.bucket,
            docker_host=host,
        )

    @property
    def name(self) -> str:
        return self.prefix

    def _docker(self, *args: str) -> list[str]:
        return [self.docker, "--host", self.docker_host, *args]

    def _run(self, *args: str) -> str:
        result = subprocess.run(self._docker(*args), capture_output=True, text=True, timeout=600)
        if result.returncode != 0:
            raise OperationError(f"docker {' '.join(args[:2])} failed: {result.stderr.strip()}")
        return result.stdout

    def servers(self) -> list[str]:
        """The stack's MLflow server containers, running or not, in index order."""
        if not self._servers:
            pattern = re.compile(rf"{re.escape(self.prefix)}-mlflow-(\d+)")
            names = [n for n in self._run("ps", "--all", "--format", "{{.Names}}").split() if pattern.fullmatch(n)]
            if not names:
                raise OperationError(f"no MLflow server container {self.prefix}-mlflow-<n>: is the stack up?")
            self._servers = sorted(names, key=lambda n: int(n.rsplit("-", 1)[1]))
        return self._servers

    def postgres(self, tool: str, database: str, *args: str) -> Command:
        return Command(
            self._docker("exec", "-i", f"{self.prefix}-postgres", tool, "-U", self.owner, "-d", database, *args)
        )

    def bucket_stream(self, *args: str) -> Command:
        return Command(self._docker("exec", "-i", self.servers()[0], *bucket_stream_argv("python", *args)))

    def stop_servers(self) -> None:
        self._run("stop", *self.servers())

    def start_servers(self) -> None:
        self._run("start", *self.servers())
        self.wait_healthy(self.servers())

    def wait_healthy(self, names: Sequence[str]) -> None:
        """Until each container's health check (the image's own) reports healthy."""
        deadline = time.monotonic() + self.healthy_timeout
        pending = list(names)
        while pending:
            status = self._run("inspect", "--format", "{{.State.Health.Status}}", pending[0]).strip()
            if status == "healthy":
                pending.pop(0)
                continue
            if status == "unhealthy" or time.monotonic() > deadline:
                raise OperationError(f"{pending[0]} is {status or 'not running'}; see `docker logs {pending[0]}`")
            time.sleep(1)
