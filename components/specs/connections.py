"""How many PostgreSQL connections the MLflow servers can open: the worst case, counted.

Measured and read in MLflow 3.17.2 (bench/CONNECTIONS.md has the figures and file:line sources):
- each uvicorn worker keeps one SQLAlchemy engine, with its own pool, per store: tracking,
  model registry and, with `--app-name basic-auth`, auth; MLFLOW_SQLALCHEMYSTORE_* size each;
- a worker serves at most 40 requests at once (anyio's thread limiter), and a request holds at
  most two connections of one engine (`log_batch`), so a pool capped below 41 can deadlock:
  every thread holding one connection and waiting for its second ("QueuePool limit", 30 s, fail);
- the `mlflow server` process itself keeps one idle connection per store for its whole life;
- a rolling ECS deploy runs up to twice the tasks (deployment maximum 200 %).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# Requests one worker serves at once, and the event-loop thread that may log a user in too.
WORKER_THREADS = 40
# Connections kept open per pool when idle. Any size works (2, 5 and 10 ran 64 concurrent
# log_batch clients without a failure); 5 halves what 10 kept idle, without reconnecting all the time.
DB_POOL_SIZE = 5
# The cap per pool, pool + overflow = 42: the 41 that rule out the log_batch deadlock, plus one
# for the event loop's login query.
DB_MAX_OVERFLOW = 37
DB_CONNECTIONS_PER_POOL = DB_POOL_SIZE + DB_MAX_OVERFLOW
# A pooled connection is replaced once it is this old (MLFLOW_SQLALCHEMYSTORE_POOL_RECYCLE): well
# under RDS Proxy's idle-client timeout (1,800 s), so the pool does not hand out a connection the
# proxy has closed. MLflow 3.17 always pre-pings (mlflow/store/db/utils.py, create_engine(...,
# pool_pre_ping=True)): after a Multi-AZ failover each dead connection fails its ping, and
# SQLAlchemy then drops every connection of the pool opened before it, so one request's ping
# empties the pool instead of each stale connection failing a request.
DB_POOL_RECYCLE_SECONDS = 600
# The boot module's migration lock, psql, backups and monitoring.
DB_CONNECTIONS_HEADROOM = 10
# ECS may run this many times the tasks while it replaces them (deployment_maximum_percent 200).
ECS_DEPLOYMENT_SURGE = 2.0


@dataclass(frozen=True)
class ConnectionBudget:
    workers: int
    servers: int
    engines: int
    surge: float = 1.0

    @property
    def per_worker(self) -> int:
        return self.engines * DB_CONNECTIONS_PER_POOL

    @property
    def per_server(self) -> int:
        # The workers' pools, and the `mlflow server` process's idle connection per store.
        return self.workers * self.per_worker + self.engines

    @property
    def peak_servers(self) -> int:
        return math.ceil(self.servers * self.surge)

    @property
    def total(self) -> int:
        return self.peak_servers * self.per_server + DB_CONNECTIONS_HEADROOM

    def explain(self) -> str:
        return (
            f"{self.peak_servers} servers at peak × ({self.workers} workers × {self.engines} pools × "
            f"{DB_CONNECTIONS_PER_POOL} + {self.engines}) + {DB_CONNECTIONS_HEADROOM} = {self.total}"
        )


def engines_per_worker(basic_auth: bool) -> int:
    """Tracking and model registry, plus auth with MLflow's basic-auth app."""
    return 3 if basic_auth else 2


def rds_default_max_connections(memory_gib: float) -> int:
    """RDS for PostgreSQL's default: LEAST({DBInstanceClassMemory/9531392}, 5000)."""
    return min(int(memory_gib * 1024**3 / 9531392), 5000)


# vCPUs of an RDS size, and GiB of memory per vCPU of a family (db.m*: 4, db.r*: 8).
_VCPUS = {"large": 2, "xlarge": 4, "2xlarge": 8, "4xlarge": 16, "8xlarge": 32, "12xlarge": 48, "16xlarge": 64,
          "24xlarge": 96, "32xlarge": 128}  # fmt: skip
_GIB_PER_VCPU = {"m": 4, "r": 8}
_BURSTABLE_GIB = {"micro": 1, "small": 2, "medium": 4, "large": 8, "xlarge": 16, "2xlarge": 32}


def instance_memory_gib(instance_class: str) -> float | None:
    """Memory of an RDS instance class (db.t4g.medium -> 4), or None for a family we do not know."""
    try:
        _, family, size = instance_class.split(".")
    except ValueError:
        return None
    if family.startswith("t"):
        return _BURSTABLE_GIB.get(size)
    per_vcpu = _GIB_PER_VCPU.get(family[:1])
    return per_vcpu * _VCPUS[size] if per_vcpu and size in _VCPUS else None
