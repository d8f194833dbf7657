"""LogArchive: the access-log bucket, and what `pulumi destroy` keeps of the stack."""

from __future__ import annotations

from tests.mocks.prod_helpers import BUCKET, policy, statements


def test_log_bucket_is_private_sse_s3_and_expiring(prod_run):
    logs = prod_run.one(BUCKET, "access-logs")
    pab = prod_run.one("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", "access-logs").plain
    assert all(
        pab[k] is True for k in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
    )
    sse = prod_run.one(
        "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration", "access-logs"
    ).plain
    assert sse["rules"][0]["applyServerSideEncryptionByDefault"]["sseAlgorithm"] == "AES256"  # ALB logs need SSE-S3
    doc = policy(prod_run.one("aws:s3/bucketPolicy:BucketPolicy", "access-logs"))
    assert statements(doc, "DenyInsecureTransport")["Effect"] == "Deny"
    # Only log delivery may write, and only under its prefixes.
    writes = [s for s in doc["Statement"] if s["Effect"] == "Allow"]
    assert writes and all(s["Principal"] != "*" for s in writes)
    assert all(
        r.endswith("/*") and "/AWSLogs/" in r for s in writes if s["Action"] == ["s3:PutObject"] for r in s["Resource"]
    )
    rules = {
        r["id"]: r
        for r in prod_run.one("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", "access-logs").plain[
            "rules"
        ]
    }
    assert rules["expire-logs"]["expiration"]["days"] == 365
    assert prod_run.one("aws:lb/loadBalancer:LoadBalancer").plain["accessLogs"]["bucket"] == f"{logs.name}-0a1b2c3"


def test_destroy_keeps_the_access_logs_and_deletes_only_what_is_rebuilt(prod_run):
    """`pulumi destroy` must not fail on the always non-empty log bucket, nor delete the audit trail."""
    archive = prod_run.one("mlflow-platform:aws:LogArchive")
    kept = [r for r in prod_run.custom if r.parent == archive.urn]
    assert {r.typ.split(":")[-1] for r in kept} == {
        "Bucket", "BucketPublicAccessBlock", "BucketOwnershipControls", "BucketServerSideEncryptionConfiguration",
        "BucketVersioning", "BucketLifecycleConfiguration", "BucketPolicy",
    }  # fmt: skip
    assert all(r.retain_on_delete for r in kept)
    assert prod_run.one(BUCKET, "access-logs").plain.get("forceDestroy") in (None, False)
    # Nothing else is retained; the artifacts (data) stop a destroy unless artifactStore.forceDestroy.
    assert [r.name for r in prod_run.custom if r.retain_on_delete and r.parent != archive.urn] == []
    # Nor does a repository that still holds images, unless registry.forceDelete (docs/aws.md, Destroying).
    assert prod_run.one("aws:ecr/repository:Repository").plain["forceDelete"] is False
