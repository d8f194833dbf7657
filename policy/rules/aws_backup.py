"""AWS Backup: the vault the recovery points live in, and which resources a plan protects."""

from __future__ import annotations

from .base import UNKNOWN, Res, Stack, as_list, label, number, resource_rule, stack_rule

VAULT = "aws:backup/vault:Vault"
PLAN = "aws:backup/plan:Plan"
SELECTION = "aws:backup/selection:Selection"
INSTANCE = "aws:rds/instance:Instance"
# AWS Config's backup-plan-min-frequency-and-min-retention-check defaults to 35 days; FSBP
# Backup.1 has no number. Below a week a recovery point does not outlast RDS's own backups.
MIN_RETENTION_DAYS = 7


@resource_rule(
    "backup-vault-cmk",
    ["FSBP Backup.1", "CKV_AWS_166"],
    "AWS Backup vaults encrypt recovery points with a customer-managed KMS key",
    [VAULT],
)
def vault_cmk(r: Res) -> list[str]:
    key = r.get("kmsKeyArn")
    if key is UNKNOWN:
        return []
    if key in (None, ""):
        return ["kmsKeyArn must name a customer-managed key (unset: the AWS managed key aws/backup)"]
    if isinstance(key, str) and key.endswith(":alias/aws/backup"):
        return ["kmsKeyArn is the AWS managed key aws/backup; use a customer-managed key"]
    return []


@resource_rule(
    "backup-plan-retention",
    ["AWS Config backup-plan-min-frequency-and-min-retention-check"],
    f"Every backup rule keeps its recovery points (and their copies) at least {MIN_RETENTION_DAYS} days",
    [PLAN],
)
def plan_retention(r: Res) -> list[str]:
    problems = []
    for rule in as_list(r.get("rules")):
        if rule is UNKNOWN or not isinstance(rule, dict):
            continue
        name = rule.get("ruleName", "?")
        lifecycles = [("", rule.get("lifecycle"))] + [
            (" copy", copy.get("lifecycle")) for copy in as_list(rule.get("copyActions")) if isinstance(copy, dict)
        ]
        for what, lifecycle in lifecycles:
            days = lifecycle.get("deleteAfter") if isinstance(lifecycle, dict) else None
            if days is UNKNOWN:
                continue
            kept = number(days)
            if kept is not None and kept < MIN_RETENTION_DAYS:
                problems.append(
                    f"rule '{name}'{what} keeps recovery points {kept:g} days; keep them at least {MIN_RETENTION_DAYS}"
                )
        if rule.get("targetVaultName") in (None, ""):
            problems.append(f"rule '{name}' names no targetVaultName")
    return problems


@stack_rule(
    "rds-in-backup-plan",
    ["FSBP RDS.26"],
    "Every RDS instance is protected by an AWS Backup plan (a selection names it)",
    [INSTANCE, SELECTION],
)
def rds_in_backup_plan(stack: Stack) -> list[tuple[str, str]]:
    return [
        (db.urn, f"{label(db)} has no AWS Backup selection naming it")
        for db in stack.of(INSTANCE)
        if not stack.joined_to(db, "resources", SELECTION)
    ]
