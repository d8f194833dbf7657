"""ECR: the registry the tracking server's image is pushed to."""

from __future__ import annotations

from .base import UNKNOWN, Res, Stack, get, is_true, items, label, resource_rule, stack_rule

REPOSITORY = "aws:ecr/repository:Repository"
LIFECYCLE_POLICY = "aws:ecr/lifecyclePolicy:LifecyclePolicy"


@resource_rule(
    "ecr-scan-on-push", ["CKV_AWS_163", "FSBP ECR.1"], "Images are scanned for vulnerabilities on push", [REPOSITORY]
)
def scan_on_push(r: Res) -> list[str]:
    ok = is_true(r.get("imageScanningConfiguration.scanOnPush"))
    return [] if ok in (True, None) else ["imageScanningConfiguration.scanOnPush must be true"]


@resource_rule("ecr-immutable-tags", ["CKV_AWS_51", "FSBP ECR.2"], "Image tags are immutable", [REPOSITORY])
def immutable_tags(r: Res) -> list[str]:
    mutability = r.get("imageTagMutability", "MUTABLE")
    if not isinstance(mutability, str) or mutability.startswith("IMMUTABLE"):
        return []
    return [f"imageTagMutability is {mutability!r}; use 'IMMUTABLE'"]


@resource_rule(
    "ecr-kms-encryption", ["CKV_AWS_136"], "Repositories are encrypted with a customer-managed KMS key", [REPOSITORY]
)
def kms_encryption(r: Res) -> list[str]:
    configs = r.get("encryptionConfigurations")
    if configs is UNKNOWN:
        return []
    config = items(configs)[0] if items(configs) else {}
    kind, key = get(config, "encryptionType", "AES256"), get(config, "kmsKey")
    if UNKNOWN in (kind, key):
        return []
    if kind != "KMS":
        return [f"encryptionType is {kind!r}; use 'KMS' with a customer-managed kmsKey"]
    # Without kmsKey, ECR uses the AWS managed key aws/ecr, whose policy nobody here controls.
    return [] if key else ["kmsKey must name a customer-managed key (unset: the AWS managed key aws/ecr)"]


@stack_rule(
    "ecr-lifecycle-policy", ["FSBP ECR.3"], "Each repository has a lifecycle policy", [REPOSITORY, LIFECYCLE_POLICY]
)
def lifecycle_policy(stack: Stack) -> list[tuple[str, str]]:
    return [
        (repo.urn, f"{label(repo)} has no LifecyclePolicy")
        for repo in stack.of(REPOSITORY)
        if not stack.joined_to(repo, "repository", LIFECYCLE_POLICY)
    ]
