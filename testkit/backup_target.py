"""operations.targets.Target for the end-to-end topology: what the dev stack's `docker exec`
runs, run on 127.0.0.1 instead.

- PostgreSQL's tools are the embedded server's own (same major version as the server), signed
  in as the owner over TCP with a 0600 PGPASSFILE (no password in argv or the environment).
- The bucket stream runs in the server venv with server 0's exact environment (its NAME_FILE
  secrets, MLFLOW_S3_ENDPOINT_URL, PYTHONPATH at images/mlflow), as `docker exec` into the
  server container inherits the container's.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from operations.targets import Command, bucket_stream_argv

from .topology import DevTopology


@dataclass
class TopologyTarget:
    topo: DevTopology
    passfile: Path = field(init=False)

    def __post_init__(self) -> None:
        assert self.topo.base_dir is not None and self.topo.postgres is not None, "start the topology first"
        self.passfile = self.topo.base_dir / "pgpass"
        pg = self.topo.postgres
        line = f"{pg.host}:{pg.port}:*:{self.owner}:{self.topo.db_owner_password}\n"
        self.passfile.unlink(missing_ok=True)
        fd = os.open(self.passfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(line)

    @property
    def name(self) -> str:
        return "mlflow-e2e"

    @property
    def database(self) -> str:
        return self.topo.settings.database.name

    @property
    def owner(self) -> str:
        return self.topo.settings.database.username

    @property
    def bucket(self) -> str:
        return self.topo.bucket

    def postgres(self, tool: str, database: str, *args: str) -> Command:
        pg = self.topo.postgres
        assert pg is not None
        argv = [pg.tool(tool), "-h", pg.host, "-p", str(pg.port), "-U", self.owner, "-d", database, *args]
        env = {"PATH": "/usr/bin:/bin", "LC_ALL": "C", "PGPASSFILE": str(self.passfile)}
        return Command(argv, env)

    def bucket_stream(self, *args: str) -> Command:
        assert self.topo.venv is not None
        inst = self.topo.instances[0]
        return Command(bucket_stream_argv(str(self.topo.venv / "bin" / "python"), *args), dict(inst.env))

    def stop_servers(self) -> None:
        self.topo.stop_mlflow(kill=True)  # docker stop is gentler; the result is the same here

    def start_servers(self) -> None:
        self.topo.start_mlflow()
