"""ElastiCache: the server jobs' queue (Valkey)."""

from __future__ import annotations

from .base import UNKNOWN, Res, is_true, resource_rule

REPLICATION_GROUP = "aws:elasticache/replicationGroup:ReplicationGroup"


def _set(value) -> bool | None:
    """Whether an input is given (None: unknown during a preview)."""
    if value is UNKNOWN:
        return None
    return value not in (None, "", [])


@resource_rule(
    "elasticache-encrypted-in-transit",
    ["CKV_AWS_30", "FSBP ElastiCache.5"],
    "ElastiCache accepts TLS connections only",
    [REPLICATION_GROUP],
)
def encrypted_in_transit(r: Res) -> list[str]:
    problems = []
    if is_true(r.get("transitEncryptionEnabled")) is False:
        problems.append("transitEncryptionEnabled must be true")
    # "preferred" also accepts plaintext clients (the migration mode).
    if r.get("transitEncryptionMode") == "preferred":
        problems.append("transitEncryptionMode must be required, not preferred")
    return problems


@resource_rule(
    "elasticache-encrypted-at-rest",
    ["CKV_AWS_29", "CKV_AWS_191", "FSBP ElastiCache.4"],
    "ElastiCache is encrypted at rest with a customer-managed key",
    [REPLICATION_GROUP],
)
def encrypted_at_rest(r: Res) -> list[str]:
    problems = []
    if is_true(r.get("atRestEncryptionEnabled")) is False:
        problems.append("atRestEncryptionEnabled must be true")
    if _set(r.get("kmsKeyId")) is False:
        problems.append("kmsKeyId must name a customer-managed key")
    return problems


@resource_rule(
    "elasticache-auth",
    ["CKV_AWS_31", "FSBP ElastiCache.6"],
    "ElastiCache clients sign in (an auth token or RBAC user groups)",
    [REPLICATION_GROUP],
)
def auth(r: Res) -> list[str]:
    if _set(r.get("authToken")) is False and _set(r.get("userGroupIds")) is False:
        return ["authToken or userGroupIds must be set"]
    return []


@resource_rule(
    "elasticache-private",
    ["CKV_AWS_323", "AWS Well-Architected SEC05 (protect networks)"],
    "ElastiCache lives in the stack's subnet group behind its own security groups",
    [REPLICATION_GROUP],
)
def private(r: Res) -> list[str]:
    # Without either, AWS places it in the default VPC's subnets and default security group.
    problems = []
    if _set(r.get("subnetGroupName")) is False:
        problems.append("subnetGroupName must name the stack's private subnet group")
    if _set(r.get("securityGroupIds")) is False:
        problems.append("securityGroupIds must name the stack's own security groups")
    return problems
