"""S3: the artifact bucket and the access-log bucket.

pulumi-aws v7 keeps every bucket setting in its own resource, so these are stack rules:
a bucket whose companion resource is missing is a violation, not a silent pass.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from .base import (
    LOAD_BALANCERS,
    UNKNOWN,
    Res,
    Stack,
    get,
    is_true,
    items,
    label,
    number,
    policy_statements,
    resource_rule,
    stack_rule,
)

BUCKET = "aws:s3/bucket:Bucket"
PUBLIC_ACCESS_BLOCK = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
ENCRYPTION = "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
VERSIONING = "aws:s3/bucketVersioning:BucketVersioning"
POLICY = "aws:s3/bucketPolicy:BucketPolicy"
LIFECYCLE = "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"
OWNERSHIP = "aws:s3/bucketOwnershipControls:BucketOwnershipControls"
BLOCKS = ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
KMS_ALGORITHMS = ("aws:kms", "aws:kms:dsse")


def _companions(stack: Stack, bucket: Res, typ: str) -> list[Res]:
    return stack.joined_to(bucket, "bucket", typ)


def _missing(bucket: Res, typ: str) -> tuple[str, str]:
    return bucket.urn, f"{label(bucket)} has no {typ.rsplit(':', 1)[-1]}"


@stack_rule(
    "s3-public-access-block",
    ["CKV_AWS_53", "CKV_AWS_54", "CKV_AWS_55", "CKV_AWS_56", "CKV2_AWS_6", "FSBP S3.8", "CIS AWS 2.1.4"],
    "Every bucket has a public-access block with all four settings on",
    [BUCKET, PUBLIC_ACCESS_BLOCK],
)
def public_access_block(stack: Stack) -> list[tuple[str, str]]:
    found = []
    for block in stack.of(PUBLIC_ACCESS_BLOCK):
        off = [key for key in BLOCKS if is_true(block.get(key)) is False]
        if off:
            found.append((block.urn, f"{label(block)} must set {', '.join(off)} to true"))
    for bucket in stack.of(BUCKET):
        if not _companions(stack, bucket, PUBLIC_ACCESS_BLOCK):
            found.append(_missing(bucket, PUBLIC_ACCESS_BLOCK))
    return found


def _access_log_buckets(stack: Stack) -> set[str]:
    """Buckets an ALB writes access logs to: ALB log delivery supports SSE-S3 only."""
    urns = set()
    for lb in stack.of(*LOAD_BALANCERS):
        if is_true(lb.get("accessLogs.enabled")) is not False and lb.get("accessLogs.bucket") is not None:
            urns |= {b.urn for b in stack.joined(lb, "accessLogs", BUCKET, value=lb.get("accessLogs.bucket"))}
    return urns


@stack_rule(
    "s3-encryption-kms",
    ["CKV_AWS_145", "CKV_AWS_19"],
    "Every bucket has default encryption with SSE-KMS (SSE-S3 only for an ALB access-log bucket)",
    [BUCKET, ENCRYPTION, *LOAD_BALANCERS],
)
def encryption(stack: Stack) -> list[tuple[str, str]]:
    found = []
    log_buckets = _access_log_buckets(stack)
    for bucket in stack.of(BUCKET):
        configs = _companions(stack, bucket, ENCRYPTION)
        if not configs:
            found.append(_missing(bucket, ENCRYPTION))
            continue
        allowed = KMS_ALGORITHMS + (("AES256",) if bucket.urn in log_buckets else ())
        for config in configs:
            rules = config.get("rules")
            algorithms = [get(rule, "applyServerSideEncryptionByDefault.sseAlgorithm") for rule in items(rules)]
            if UNKNOWN in algorithms or rules is UNKNOWN:
                continue
            if not algorithms or any(a not in allowed for a in algorithms):
                found.append(
                    (
                        config.urn,
                        f"{label(bucket)} is encrypted with {', '.join(map(str, algorithms)) or 'nothing'}; "
                        f"use {' or '.join(allowed)}",
                    )
                )
    return found


@stack_rule("s3-versioning", ["CKV_AWS_21", "FSBP S3.14"], "Every bucket has versioning enabled", [BUCKET, VERSIONING])
def versioning(stack: Stack) -> list[tuple[str, str]]:
    found = []
    for bucket in stack.of(BUCKET):
        configs = _companions(stack, bucket, VERSIONING)
        if not configs:
            found.append(_missing(bucket, VERSIONING))
        for config in configs:
            status = config.get("versioningConfiguration.status")
            if status is not UNKNOWN and status != "Enabled":
                found.append((config.urn, f"{label(bucket)}: versioning status is {status!r}, must be 'Enabled'"))
    return found


def _denies_plain_http(statement: Mapping[str, Any]) -> bool:
    actions = statement.get("Action", [])
    actions = [actions] if isinstance(actions, str) else actions
    principal = statement.get("Principal")
    secure = get(statement, "Condition.Bool.aws:SecureTransport")
    return (
        statement.get("Effect") == "Deny"
        and (principal == "*" or principal == {"AWS": "*"})
        and any(a in ("s3:*", "*") for a in actions)
        and str(secure).lower() == "false"
    )


@stack_rule(
    "s3-tls-only",
    ["FSBP S3.5", "CIS AWS 2.1.1"],
    "Every bucket policy denies requests that do not use TLS",
    [BUCKET, POLICY],
)
def tls_only(stack: Stack) -> list[tuple[str, str]]:
    found = []
    for bucket in stack.of(BUCKET):
        policies = _companions(stack, bucket, POLICY)
        if not policies:
            found.append(_missing(bucket, POLICY))
        for policy in policies:
            if policy.get("policy") is UNKNOWN:
                continue
            if not any(_denies_plain_http(s) for s in policy_statements(policy.get("policy"))):
                found.append(
                    (
                        policy.urn,
                        f"{label(bucket)}: the bucket policy must deny s3:* to every principal "
                        "when aws:SecureTransport is false",
                    )
                )
    return found


@stack_rule(
    "s3-abort-incomplete-uploads",
    ["CKV_AWS_300", "CKV2_AWS_61", "FSBP S3.13"],
    "Every bucket has a lifecycle rule that aborts incomplete multipart uploads",
    [BUCKET, LIFECYCLE],
)
def abort_incomplete_uploads(stack: Stack) -> list[tuple[str, str]]:
    found = []
    for bucket in stack.of(BUCKET):
        configs = _companions(stack, bucket, LIFECYCLE)
        if not configs:
            found.append(_missing(bucket, LIFECYCLE))
            continue
        if any(c.get("rules") is UNKNOWN for c in configs):
            continue
        rules = [rule for config in configs for rule in items(config.get("rules")) if isinstance(rule, dict)]
        if not any(
            get(rule, "status") == "Enabled"
            and (number(get(rule, "abortIncompleteMultipartUpload.daysAfterInitiation")) or 0) > 0
            for rule in rules
        ):
            found.append(
                (
                    configs[0].urn,
                    f"{label(bucket)}: no enabled lifecycle rule sets "
                    "abortIncompleteMultipartUpload.daysAfterInitiation",
                )
            )
    return found


@stack_rule(
    "s3-acls-disabled",
    ["CKV2_AWS_65", "FSBP S3.12"],
    "Every bucket disables ACLs (object ownership BucketOwnerEnforced)",
    [BUCKET, OWNERSHIP],
)
def acls_disabled(stack: Stack) -> list[tuple[str, str]]:
    found = []
    for bucket in stack.of(BUCKET):
        controls = _companions(stack, bucket, OWNERSHIP)
        if not controls:
            found.append(_missing(bucket, OWNERSHIP))
        for control in controls:
            ownership = control.get("rule.objectOwnership")
            if ownership is not UNKNOWN and ownership != "BucketOwnerEnforced":
                found.append(
                    (control.urn, f"{label(bucket)}: object ownership is {ownership!r}, must be 'BucketOwnerEnforced'")
                )
    return found


@resource_rule("s3-policy-not-public", ["CKV_AWS_70"], "No bucket policy allows anything to every principal", [POLICY])
def policy_not_public(r: Res) -> list[str]:
    found = []
    for statement in policy_statements(r.get("policy")):
        principal = statement.get("Principal")
        if statement.get("Effect") == "Allow" and (principal == "*" or principal == {"AWS": "*"}):
            found.append(
                f"statement {statement.get('Sid', '(no Sid)')!r} allows {statement.get('Action')} to every principal"
            )
    return found


LOGGING = "aws:s3/bucketLogging:BucketLogging"
LOGGING_V2 = "aws:s3/bucketLoggingV2:BucketLoggingV2"


@stack_rule(
    "s3-access-logging",
    ["FSBP S3.9", "CKV_AWS_18"],
    "Every bucket has server access logging to an SSE-S3 bucket, but the buckets that receive those logs",
    [BUCKET, LOGGING, LOGGING_V2, ENCRYPTION],
)
def access_logging(stack: Stack) -> list[tuple[str, str]]:
    found = []
    covered: set[str] = set()
    for logging in stack.of(LOGGING, LOGGING_V2):
        sources, targets = stack.joined(logging, "bucket", BUCKET), stack.joined(logging, "targetBucket", BUCKET)
        if not sources or not targets or sources == targets:
            # Which bucket is which cannot be told (no property dependencies, no outputs): every
            # bucket it depends on counts as logged, and its target's encryption goes unchecked.
            covered |= {u for u in logging.dependencies if u in stack.by_urn and stack.by_urn[u].type == BUCKET}
            continue
        covered |= {b.urn for b in sources} | {t.urn for t in targets}
        for target in targets:
            # S3 cannot deliver server access logs to a bucket whose default encryption is SSE-KMS.
            for config in _companions(stack, target, ENCRYPTION):
                rules = config.get("rules")
                algorithms = [get(rule, "applyServerSideEncryptionByDefault.sseAlgorithm") for rule in items(rules)]
                if rules is not UNKNOWN and UNKNOWN not in algorithms and any(a != "AES256" for a in algorithms):
                    found.append(
                        (logging.urn, f"{label(target)} receives server access logs: it must use AES256 (SSE-S3)")
                    )
    # A bucket that receives server access logs is not itself logged: into itself, it would never stop.
    found += [_missing(bucket, LOGGING) for bucket in stack.of(BUCKET) if bucket.urn not in covered]
    return found
