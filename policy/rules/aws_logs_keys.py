"""CloudWatch log groups, KMS keys and Secrets Manager secrets."""

from __future__ import annotations

from .base import UNKNOWN, Res, is_true, number, resource_rule

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
