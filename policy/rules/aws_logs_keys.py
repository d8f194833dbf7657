"""CloudWatch log groups, KMS keys and Secrets Manager secrets."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .base import UNKNOWN, Res, as_list, is_true, number, policy_statements, resource_rule

LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
KEY = "aws:kms/key:Key"
SECRET = "aws:secretsmanager/secret:Secret"


# The shortest retention a log group may have (components/config/aws.py refuses less in config).
MIN_RETENTION_DAYS = 90


@resource_rule(
    "cloudwatch-log-retention",
    ["CKV_AWS_66", "CKV_AWS_338"],
    "Log groups keep logs at least 90 days, not forever (CKV_AWS_338's year is the default)",
    [LOG_GROUP],
)
def log_retention(r: Res) -> list[str]:
    days = r.get("retentionInDays")
    if days is UNKNOWN:
        return []
    kept = number(days) or 0
    if kept <= 0:
        return ["retentionInDays must be set (0 or unset keeps logs forever)"]
    if kept < MIN_RETENTION_DAYS:
        return [f"retentionInDays is {kept:g}; keep logs at least {MIN_RETENTION_DAYS} days"]
    return []


@resource_rule("cloudwatch-log-kms", ["CKV_AWS_158"], "Log groups are encrypted with a KMS key", [LOG_GROUP])
def log_kms(r: Res) -> list[str]:
    return [] if r.get("kmsKeyId") not in (None, "") else ["kmsKeyId must be set"]


@resource_rule(
    "kms-key-rotation", ["CKV_AWS_7", "FSBP KMS.4", "CIS AWS 3.6"], "Customer-managed symmetric KMS keys rotate", [KEY]
)
def key_rotation(r: Res) -> list[str]:
    spec = r.get("customerMasterKeySpec", "SYMMETRIC_DEFAULT")
    if spec is UNKNOWN or spec != "SYMMETRIC_DEFAULT":
        return []  # AWS rotates only symmetric keys
    ok = is_true(r.get("enableKeyRotation"))
    return [] if ok in (True, None) else ["enableKeyRotation must be true"]


@resource_rule("secretsmanager-cmk", ["CKV_AWS_149"], "Secrets are encrypted with a customer-managed KMS key", [SECRET])
def secret_cmk(r: Res) -> list[str]:
    return [] if r.get("kmsKeyId") not in (None, "") else ["kmsKeyId must name a customer-managed key"]


@resource_rule(
    "kms-key-policy", ["CKV2_AWS_64"], "Every KMS key has an explicit key policy (not the default one)", [KEY]
)
def key_policy(r: Res) -> list[str]:
    policy = r.get("policy")
    if policy is UNKNOWN:
        return []
    if policy in (None, ""):
        return ["policy must be set: without it AWS applies its default policy"]
    return [] if policy_statements(policy) else ["policy has no statement"]


# Conditions that tie a service principal's (or the account's) use of a key to this account,
# one service or one resource: without one, any account's use of that service reaches the key.
PINNING_CONDITIONS = ("kms:CallerAccount", "kms:ViaService", "aws:SourceAccount", "aws:SourceArn",
                      "aws:PrincipalAccount", "aws:PrincipalOrgID", "kms:EncryptionContext:")  # fmt: skip


def _condition_keys(statement: Mapping[str, Any]) -> set[str]:
    condition = statement.get("Condition")
    if not isinstance(condition, Mapping):
        return set()
    return {key for block in condition.values() if isinstance(block, Mapping) for key in block}


def _pinned(statement: Mapping[str, Any]) -> bool:
    return any(key.startswith(PINNING_CONDITIONS) for key in _condition_keys(statement))


@resource_rule(
    "kms-key-policy-principals",
    ["CKV_AWS_33", "FSBP KMS.5"],
    "Key policies grant no wildcard principal, and no service principal without a condition pinning it",
    [KEY],
)
def key_policy_principals(r: Res) -> list[str]:
    found = []
    for statement in policy_statements(r.get("policy")):
        if statement.get("Effect") != "Allow":
            continue
        sid = statement.get("Sid", "(no Sid)")
        principal = statement.get("Principal")
        aws_principals = as_list(principal.get("AWS")) if isinstance(principal, Mapping) else [principal]
        services = as_list(principal.get("Service")) if isinstance(principal, Mapping) else []
        if "*" in aws_principals and not _pinned(statement):
            found.append(f"statement {sid!r} lets any principal use the key")
        if services and not _pinned(statement):
            found.append(
                f"statement {sid!r} lets {', '.join(map(str, services))} use the key for anyone: "
                "pin it with an encryption context, aws:SourceArn/SourceAccount, kms:ViaService or kms:CallerAccount"
            )
    return found
