"""Redis for the server jobs' queue on the dev stack: its config file (password, persistence), the
command and the health check. The e2e kit runs Debian's redis-server from the same spec.

The password is a line of the config file, which arrives as a secret upload: never a command-line
argument (`--requirepass` would show in `ps` and `docker inspect`) nor an environment variable.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from components.specs.health import HealthCheck
from components.versions import REDIS_IMAGE

PORT = 6379
DATA_DIR = "/data"
CONFIG_PATH = "/usr/local/etc/redis/redis.conf"
# uid/gid of `redis` in the official Debian image (its Dockerfile: useradd -r -g redis -u 999):
# the entrypoint drops to it (gosu) before redis-server reads the config file.
REDIS_UID = "999"
# Letters and digits (RandomPassword special=False): nothing to escape in the config or the URL.
PASSWORD_LENGTH = 32


@dataclass(frozen=True)
class RedisSpec:
    image: str
    # After the image's entrypoint, which runs `redis-server <file>.conf` as the redis user.
    command: tuple[str, ...]
    config_path: str
    port: int
    data_dir: str
    health: HealthCheck
    bind: str = "0.0.0.0"

    def config_text(self, password: str) -> str:
        """redis.conf; it holds the password, so it is a secret as a whole."""
        if not password.isalnum():
            raise ValueError("the Redis password must be letters and digits (written unquoted in redis.conf)")
        return "\n".join([
            "# Written by mlflow-platform (components/specs/redis.py); the MLflow servers' job queue.",
            f"bind {self.bind}",
            f"port {self.port}",
            # Every client signs in as the default user with this password (MLflow's URL carries it).
            f"requirepass {password}",
            f"dir {self.data_dir}",
            # Queued jobs survive a restart: an append-only file on the kept volume, synced every
            # second. What the last second loses, MLflow re-enqueues: a job is a PENDING row in
            # PostgreSQL first, and each server's job runner re-submits unfinished ones at start.
            "appendonly yes",
            "appendfsync everysec",
            'save ""',
            # A full queue refuses new jobs rather than silently dropping queued ones.
            "maxmemory-policy noeviction",
            "",
        ])  # fmt: skip


def redis_spec(
    *, image: str = REDIS_IMAGE, port: int = PORT, data_dir: str = DATA_DIR, config_path: str = CONFIG_PATH,
    bind: str = "0.0.0.0",
) -> RedisSpec:  # fmt: skip
    """The dev queue as the container runs it (the kit passes its own paths, port and loopback)."""
    # redis-cli reads the password from REDISCLI_AUTH, set here from the config file: it is never
    # in an argv. An unauthenticated PING would answer NOAUTH even while the data is loading.
    password = f"$(sed -n 's/^requirepass //p' {shlex.quote(config_path)})"
    ping = f'REDISCLI_AUTH="{password}" redis-cli -h 127.0.0.1 -p {port} ping | grep -qx PONG'
    health = HealthCheck(
        command=(ping,), kind="CMD-SHELL", interval_seconds=10, timeout_seconds=5, retries=6, start_period_seconds=30
    )
    return RedisSpec(
        image=image,
        command=("redis-server", config_path),
        config_path=config_path,
        port=port,
        data_dir=data_dir,
        health=health,
        bind=bind,
    )
