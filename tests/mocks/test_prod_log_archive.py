"""LogArchive: the access-log bucket, and what `pulumi destroy` keeps of the stack."""

from __future__ import annotations

from tests.mocks.prod_helpers import ACCOUNT, BUCKET, artifact_bucket_arn, aws_outputs, policy, statements

LOGGING = "aws:s3/bucketLogging:BucketLogging"


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
        r.endswith("/*") and ("/AWSLogs/" in r or r.endswith("/s3-access/*"))
        for s in writes
        if s["Action"] == ["s3:PutObject"]
        for r in s["Resource"]
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
    # The artifact bucket's logging setting goes with the artifact bucket (test below).
    kept = [r for r in prod_run.custom if r.parent == archive.urn and r.typ != LOGGING]
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


def test_the_artifact_bucket_logs_its_requests_into_the_log_bucket_and_only_s3_may_write_them(prod_run):
    """FSBP S3.9. S3 delivers server access logs as logging.s3.amazonaws.com; with ACLs off
    (BucketOwnerEnforced) only a bucket policy can let it write (S3 user guide, "Enabling Amazon S3
    server access logging"), and SSE-KMS is not supported on the target (hence SSE-S3, above)."""
    logs = prod_run.one(BUCKET, "access-logs")
    artifacts = prod_run.one(BUCKET, "-artifacts")
    (logging,) = prod_run.of_type(LOGGING)
    assert logging.plain == {
        "bucket": aws_outputs(BUCKET, artifacts.name, artifacts.plain)["bucket"],
        "targetBucket": aws_outputs(BUCKET, logs.name, logs.plain)["bucket"],
        "targetPrefix": "s3-access/artifacts/",
        "targetObjectKeyFormat": {"partitionedPrefix": {"partitionDateSource": "EventTime"}},
    }
    policy_resource = prod_run.one("aws:s3/bucketPolicy:BucketPolicy", "access-logs")
    assert policy_resource.urn in logging.dependencies  # delivery is allowed before logging starts
    assert not logging.retain_on_delete
    doc = policy(policy_resource)
    delivery = statements(doc, "S3ServerAccessLogs")
    log_bucket_arn = aws_outputs(BUCKET, logs.name, logs.plain)["arn"]
    assert delivery["Principal"] == {"Service": "logging.s3.amazonaws.com"}
    assert delivery["Action"] == ["s3:PutObject"] and delivery["Resource"] == [f"{log_bucket_arn}/s3-access/*"]
    assert delivery["Condition"] == {
        "StringEquals": {"aws:SourceAccount": ACCOUNT},
        "ArnLike": {"aws:SourceArn": [artifact_bucket_arn(prod_run)]},
    }
