"""PostgreSQL for the dev stack: the official image's settings, health check and secret file."""

from __future__ import annotations

from dataclasses import dataclass
from types import MappingProxyType
from typing import Mapping

from components.config.docker import DockerDatabaseSettings
from components.specs.health import HealthCheck

PORT = 5432
DATA_DIR = "/var/lib/postgresql/data"
PASSWORD_FILE = "/run/secrets/postgres_password"
# uid/gid of `postgres` in the official Debian image: the password file must be readable by it.
POSTGRES_UID = "999"


@dataclass(frozen=True)
class PostgresSpec:
    image: str
    env: Mapping[str, str]
    health: HealthCheck
    port: int = PORT
    data_dir: str = DATA_DIR
    password_file: str = PASSWORD_FILE


def postgres_spec(database: DockerDatabaseSettings) -> PostgresSpec:
    env = {
        "POSTGRES_DB": database.name,
        "POSTGRES_USER": database.username,
        # The entrypoint reads the password from this file; it is never in the container's env.
        "POSTGRES_PASSWORD_FILE": PASSWORD_FILE,
        "POSTGRES_INITDB_ARGS": "--auth-host=scram-sha-256",
        # A subdirectory, so the volume's root (lost+found on some drivers) does not upset initdb.
        "PGDATA": f"{DATA_DIR}/pgdata",
    }
    health = HealthCheck(
        command=("pg_isready", "--host", "127.0.0.1", "--username", database.username, "--dbname", database.name),
        interval_seconds=5,
        timeout_seconds=5,
        retries=10,
        start_period_seconds=30,
    )
    return PostgresSpec(image=database.image, env=MappingProxyType(env), health=health)
