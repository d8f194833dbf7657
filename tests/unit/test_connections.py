"""The connection budget: what the servers can open in the worst case, and what RDS would run."""

from __future__ import annotations

import pytest

from components.specs.connections import (
    DB_CONNECTIONS_PER_POOL,
    WORKER_THREADS,
    ConnectionBudget,
    engines_per_worker,
    instance_memory_gib,
    rds_default_max_connections,
)


def test_a_pool_is_large_enough_that_log_batch_cannot_deadlock():
    # Every thread holding one connection and waiting for its second needs threads + 1, and the
    # event loop's login query one more.
    assert DB_CONNECTIONS_PER_POOL >= WORKER_THREADS + 2


def test_the_prod_worst_case_counts_every_pool_worker_task_and_the_rollout_surge():
    budget = ConnectionBudget(workers=2, servers=8, engines=engines_per_worker(basic_auth=True), surge=2.0)
    # 16 tasks during a rollout at the autoscaling maximum, 2 workers of 3 pools of 42, the CLI's 3.
    assert budget.peak_servers == 16
    assert budget.total == 16 * (2 * 3 * 42 + 3) + 10 == 4090
    assert "16 servers at peak" in budget.explain()


def test_the_dev_budget_has_no_surge_and_no_auth_pool():
    budget = ConnectionBudget(workers=2, servers=1, engines=engines_per_worker(basic_auth=False))
    assert budget.total == 2 * 2 * 42 + 2 + 10


@pytest.mark.parametrize(
    "instance_class,gib",
    [
        ("db.t4g.medium", 4),
        ("db.t3.micro", 1),
        ("db.m7g.large", 8),
        ("db.r6g.2xlarge", 64),
        ("db.x2g.large", None),
        ("nonsense", None),
    ],
)
def test_instance_memory(instance_class, gib):
    assert instance_memory_gib(instance_class) == gib


def test_a_4_gib_instance_runs_about_450_connections_by_rds_default():
    assert rds_default_max_connections(4) == 450
    assert rds_default_max_connections(1024) == 5000
