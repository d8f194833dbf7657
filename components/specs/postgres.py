"""PostgreSQL for the dev stack: the official image's settings, health check and secret file."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from components.config.docker import DockerDatabaseSettings
from components.specs.durability import postgres_flags
from components.specs.health import HealthCheck
from images.mlflow import server_contract as contract

PORT = contract.POSTGRES_PORT
DATA_DIR = "/var/lib/postgresql/data"
PASSWORD_FILE = "/run/secrets/postgres_password"
# uid/gid of `postgres` in the official Debian image: the password file must be readable by it.
POSTGRES_UID = "999"
# Wraps the image's entrypoint (see ENTRYPOINT_SCRIPT).
ENTRYPOINT_PATH = "/usr/local/bin/mlflow-platform-postgres"

# The official image applies POSTGRES_PASSWORD_FILE only when it initialises an empty data
# directory. A volume kept across `pulumi destroy` meets a newly generated password on the
# next `up`, so after every start the role's password is set from the file again: the secret
# in the Pulumi state is always the one that works (and replacing it rotates the password).
# psql reads the file itself (`\set` with backticks): the password is never in an argv.
ENTRYPOINT_SCRIPT = r"""#!/usr/bin/env bash
set -uo pipefail
# Job control: without it bash starts background jobs with SIGINT ignored.
set -m
docker-entrypoint.sh "$@" &
server=$!
# Forward what Docker sends (the image stops with SIGINT: fast shutdown).
trap 'kill -INT "$server" 2>/dev/null' INT
trap 'kill -TERM "$server" 2>/dev/null' TERM
# The entrypoint's own init server listens on the socket only; wait for the real one on TCP.
until pg_isready --host 127.0.0.1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" --quiet; do
    kill -0 "$server" 2>/dev/null || break
    sleep 1
done
if kill -0 "$server" 2>/dev/null; then
    psql --no-psqlrc --quiet --set ON_ERROR_STOP=1 --host /var/run/postgresql          --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" <<'SQL' || echo "mlflow-platform: could not sync the password" >&2
\set password `cat "$POSTGRES_PASSWORD_FILE"`
ALTER ROLE CURRENT_USER PASSWORD :'password';
SQL
fi
# A trapped signal ends `wait` early: wait until the server has really exited, then take
# its own exit status (bash keeps it for a reaped child).
while kill -0 "$server" 2>/dev/null; do
    wait "$server"
done
wait "$server"
exit $?
"""


@dataclass(frozen=True)
class PostgresSpec:
    image: str
    env: Mapping[str, str]
    health: HealthCheck
    port: int = PORT
    data_dir: str = DATA_DIR
    password_file: str = PASSWORD_FILE
    entrypoint: tuple[str, ...] = (ENTRYPOINT_PATH,)
    command: tuple[str, ...] = ("postgres",)
    entrypoint_script: str = ENTRYPOINT_SCRIPT


def postgres_spec(database: DockerDatabaseSettings, max_connections: int = 100) -> PostgresSpec:
    """`max_connections`: what the MLflow servers may open (database_connections_needed)."""
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
    return PostgresSpec(
        image=database.image,
        env=MappingProxyType(env),
        health=health,
        # Durability stated, not left to the image's postgresql.conf (which a volume may carry).
        command=("postgres", "-c", f"max_connections={max(100, max_connections)}", *postgres_flags()),
    )
