"""Every rule of the pack, in the order of docs/policy.md. Importing a module registers its rules."""

# isort: off (the import order is the rule order)
from . import (  # noqa: F401
    aws_alb,
    aws_backup,
    aws_ecr,
    aws_ecs,
    aws_elasticache,
    aws_iam,
    aws_logs_keys,
    aws_monitoring,
    aws_network,
    aws_rds,
    aws_s3,
    aws_waf,
    docker_stack,  # noqa: F401
)

# isort: on
from .base import RULES, UNKNOWN, Res, Rule, Stack, UnknownValueUsed

ALL_RULES: tuple[Rule, ...] = tuple(RULES)
BY_ID = {rule.id: rule for rule in ALL_RULES}
assert len(BY_ID) == len(ALL_RULES), "rule ids must be unique"

__all__ = ["ALL_RULES", "BY_ID", "Res", "Rule", "Stack", "UNKNOWN", "UnknownValueUsed"]
