"""Capacity for a team, from the per-call CPU bench/compare.py measured (docs/sizing.md).

    python bench/sizing.py            # prints the two tables of docs/sizing.md

The measured figures and the load an active user puts on the server are constants here, so the
table, docs/sizing.md and the prod defaults (a test holds them to the 200-user row) come from one
place. Change a constant after a new bench run and the test names what no longer matches.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

# CPU milliseconds per call, MLflow 3.17.2 (all of its processes) and PostgreSQL, at 8 clients:
# bench/RESULTS.md, "bench/compare.py" (2026-12-04), our topology's rows.
MLFLOW_CPU_MS = {"log_metric": 6.6, "log_batch": 30.6, "search_runs": 42.3, "get_metric_history": 808.0}
POSTGRES_CPU_MS = {"log_metric": 1.14, "log_batch": 2.94, "search_runs": 4.81, "get_metric_history": 8.54}

# What one active user asks per second at the busiest hour (an assumption, stated in the docs):
# one training job logging a 100-metric batch every 5 s and a single metric every 2 s, and a UI
# or notebook that searches runs every 30 s and draws a 20,000-point metric every 2 minutes.
CALLS_PER_USER_SECOND = {"log_metric": 0.5, "log_batch": 0.2, "search_runs": 1 / 30, "get_metric_history": 1 / 120}

# Autoscaling aims at this CPU (tasks.targetCpuPercent); a task of 1 vCPU (tasks.cpu 1024).
TARGET_CPU = 0.60
TASK_VCPU = 1.0
# Above the busiest hour's task count: bursts (a sweep of many jobs starting together) while
# autoscaling catches up, which takes minutes on Fargate.
BURST_HEADROOM = 1.33
# At least two tasks, in two zones.
MIN_TASKS = 2
# WAF's rate limit counts one client address over 5 minutes; a team behind one NAT is one address.
WAF_WINDOW_SECONDS = 300
# RDS: a burstable db.t4g.medium sustains 20 % of each of its 2 vCPUs without spending credits.
RDS_CLASSES = (("db.t4g.medium", 0.40), ("db.m7g.large", 2 * TARGET_CPU), ("db.m7g.xlarge", 4 * TARGET_CPU))


@dataclass(frozen=True)
class Row:
    users: int
    requests_per_second: float
    mlflow_vcpu: float
    postgres_vcpu: float
    busy_tasks: int
    min_tasks: int
    max_tasks: int
    requests_per_task_minute: int
    waf_limit: int
    rds_class: str


def per_user(table: dict[str, float]) -> float:
    """CPU seconds per second (vCPU) one active user costs, from per-call milliseconds."""
    return sum(CALLS_PER_USER_SECOND[call] * table[call] for call in CALLS_PER_USER_SECOND) / 1000


def _round_up(value: float, step: int) -> int:
    return int(math.ceil(value / step) * step)


def row(users: int) -> Row:
    requests = users * sum(CALLS_PER_USER_SECOND.values())
    mlflow, postgres = users * per_user(MLFLOW_CPU_MS), users * per_user(POSTGRES_CPU_MS)
    busy = max(MIN_TASKS, math.ceil(mlflow / (TASK_VCPU * TARGET_CPU)))
    # The request target that means the CPU target at this mix: a task at 60 % serves this many.
    per_task_minute = TASK_VCPU * TARGET_CPU / per_user(MLFLOW_CPU_MS) * sum(CALLS_PER_USER_SECOND.values()) * 60
    rds = next((name for name, vcpu in RDS_CLASSES if postgres <= vcpu), RDS_CLASSES[-1][0])
    return Row(
        users=users,
        requests_per_second=requests,
        mlflow_vcpu=mlflow,
        postgres_vcpu=postgres,
        busy_tasks=busy,
        min_tasks=MIN_TASKS if users <= 200 else max(MIN_TASKS, busy // 3),
        max_tasks=math.ceil(busy * BURST_HEADROOM),
        requests_per_task_minute=_round_up(per_task_minute, 100),
        waf_limit=_round_up(requests * WAF_WINDOW_SECONDS * BURST_HEADROOM, 10_000),
        rds_class=rds,
    )


USERS = (50, 200, 500)
CALL_NAMES = {
    "log_metric": "`log_metric`",
    "log_batch": "`log_batch` (100 metrics)",
    "search_runs": "`search_runs` (100 of 1,000 runs, ordered by a metric)",
    "get_metric_history": "`get_metric_history` (20,000 points)",
}


def cost_table() -> str:
    """The measured per-call CPU, and what one vCPU of MLflow serves of each call alone."""
    lines = ["| call | MLflow CPU ms | PostgreSQL CPU ms | calls/s per vCPU of MLflow |", "|---|---:|---:|---:|"]
    for call, name in CALL_NAMES.items():
        mlflow = MLFLOW_CPU_MS[call]
        lines.append(f"| {name} | {mlflow:g} | {POSTGRES_CPU_MS[call]:g} | {1000 / mlflow:.3g} |")
    return "\n".join(lines)


def table() -> str:
    lines = [
        "| active users | requests/s | MLflow vCPU | PostgreSQL vCPU | tasks busy (1 vCPU, 60 %) | "
        "`tracking.replicas` (min) | `tasks.maxCount` | `tasks.targetRequestsPerTask` | "
        "`waf.rateLimitPer5Minutes` (one NAT) | `database.instanceClass` |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for each in map(row, USERS):
        lines.append(
            f"| {each.users} | {each.requests_per_second:.0f} | {each.mlflow_vcpu:.1f} | {each.postgres_vcpu:.2f} | "
            f"{each.busy_tasks} | {each.min_tasks} | {each.max_tasks} | {each.requests_per_task_minute} | "
            f"{each.waf_limit} | {each.rds_class} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    print(cost_table(), table(), sep="\n\n")
