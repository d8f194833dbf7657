"""docs/sizing.md's table comes from bench/sizing.py, and the prod defaults are its 200-user row."""

from __future__ import annotations

from pathlib import Path

import pytest

from bench import sizing
from components.config import parse_settings
from tests.mocks.prod_helpers import prod_settings
from tests.unit.test_config_aws import GOOD

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_docs_sizing_holds_the_tables_the_figures_give():
    text = (REPO_ROOT / "docs" / "sizing.md").read_text()
    assert sizing.cost_table() in text and sizing.table() in text, "run: python bench/sizing.py"


@pytest.mark.parametrize(
    "settings", [parse_settings(GOOD), prod_settings()], ids=["model defaults", "Pulumi.prod.yaml"]
)
def test_the_prod_defaults_are_the_200_user_row(settings):
    row = sizing.row(200)
    assert settings.tracking.replicas == row.min_tasks
    assert settings.tasks.max_count == row.max_tasks
    assert settings.tasks.target_requests_per_task == row.requests_per_task_minute
    assert settings.tasks.target_cpu_percent == sizing.TARGET_CPU * 100
    assert settings.tasks.cpu == sizing.TASK_VCPU * 1024
    assert settings.load_balancer.waf.rate_limit_per_5_minutes == row.waf_limit
    assert settings.database.instance_class == row.rds_class


def test_the_rows_follow_the_load():
    small, team, large = map(sizing.row, sizing.USERS)
    assert small.busy_tasks <= team.busy_tasks <= large.busy_tasks
    # Every task count covers the busiest hour at the CPU target, with room for a burst.
    for each in (small, team, large):
        assert each.busy_tasks * sizing.TASK_VCPU * sizing.TARGET_CPU >= each.mlflow_vcpu
        assert each.max_tasks > each.busy_tasks >= each.min_tasks >= sizing.MIN_TASKS
    # A burstable instance only where the database's share stays under its baseline.
    assert team.postgres_vcpu <= 0.40 < large.postgres_vcpu and large.rds_class != "db.t4g.medium"
