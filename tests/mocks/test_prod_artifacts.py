"""ArtifactStore: the private SSE-KMS bucket only the task role and the operators may touch."""

from __future__ import annotations

import json

from components.config import ConfigError
from tests.mocks.prod_helpers import (
    ACCOUNT,
    BUCKET,
    REGION,
    artifact,
    artifact_bucket_arn,
    policy,
    prod_section,
    run_prod,
    statements,
)


def test_artifact_bucket_blocks_public_access_and_acls(prod_run):
    pab = artifact(prod_run, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock").plain
    assert all(
        pab[k] is True for k in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets")
    )
    ownership = artifact(prod_run, "aws:s3/bucketOwnershipControls:BucketOwnershipControls").plain
    assert ownership["rule"]["objectOwnership"] == "BucketOwnerEnforced"
    assert artifact(prod_run, BUCKET).plain.get("forceDestroy") in (None, False)


def test_artifact_bucket_is_sse_kms_with_bucket_key_and_versioned(prod_run):
    sse = artifact(
        prod_run, "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
    ).plain
    (rule,) = sse["rules"]
    assert rule["applyServerSideEncryptionByDefault"]["sseAlgorithm"] == "aws:kms"
    assert (
        rule["applyServerSideEncryptionByDefault"]["kmsMasterKeyId"]
        == f"arn:aws:kms:{REGION}:{ACCOUNT}:key/mlflow-prod-artifacts-key"
    )
    assert rule["bucketKeyEnabled"] is True
    versioning = artifact(prod_run, "aws:s3/bucketVersioning:BucketVersioning").plain
    assert versioning["versioningConfiguration"]["status"] == "Enabled"
    key = prod_run.one("aws:kms/key:Key", "artifacts").plain
    assert key["enableKeyRotation"] is True


def test_artifact_bucket_lifecycle_aborts_uploads_and_expires_old_versions(prod_run):
    rules = {
        r["id"]: r
        for r in artifact(prod_run, "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration").plain["rules"]
    }
    assert rules["abort-incomplete-multipart-uploads"]["abortIncompleteMultipartUpload"]["daysAfterInitiation"] == 7
    assert rules["expire-noncurrent-versions"]["noncurrentVersionExpiration"]["noncurrentDays"] == 90
    assert all(r["status"] == "Enabled" for r in rules.values())


def test_artifact_bucket_policy_denies_plain_http_and_everyone_but_the_task_role_and_operators(prod_run):
    bucket_arn = artifact_bucket_arn(prod_run)
    doc = policy(artifact(prod_run, "aws:s3/bucketPolicy:BucketPolicy"))
    tls = statements(doc, "DenyInsecureTransport")
    assert tls["Effect"] == "Deny" and tls["Principal"] == "*" and tls["Action"] == ["s3:*"]
    assert tls["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert tls["Resource"] == [bucket_arn, f"{bucket_arn}/*"]
    others = statements(doc, "OnlyTheServerAndOperatorsTouchObjects")
    assert others["Effect"] == "Deny" and {"s3:GetObject", "s3:PutObject", "s3:DeleteObject"} <= set(others["Action"])
    task_role_arn = f"arn:aws:iam::{ACCOUNT}:role/mlflow-prod-task"
    # The deploy role by default: backups, restores and a forceDestroy are not locked out.
    deploy_role_arn = f"arn:aws:iam::{ACCOUNT}:role/mlflow-platform-deploy"
    # AWS Backup's role reads the objects for each S3 backup and writes them back on a restore.
    backup_role_arn = f"arn:aws:iam::{ACCOUNT}:role/mlflow-prod-backup"
    assert others["Condition"] == {
        "ArnNotEquals": {"aws:PrincipalArn": [task_role_arn, deploy_role_arn, backup_role_arn]}
    }
    assert all(s["Effect"] == "Deny" for s in doc["Statement"])


def test_configured_operator_roles_replace_the_default_in_the_bucket_exception():
    operators = [f"arn:aws:iam::{ACCOUNT}:role/backup", f"arn:aws:iam::{ACCOUNT}:role/admins/platform-admin"]
    run = run_prod(artifactStore={**prod_section("artifactStore"), "operatorRoleArns": operators})
    doc = policy(artifact(run, "aws:s3/bucketPolicy:BucketPolicy"))
    allowed = statements(doc, "OnlyTheServerAndOperatorsTouchObjects")["Condition"]["ArnNotEquals"]["aws:PrincipalArn"]
    assert allowed == [
        f"arn:aws:iam::{ACCOUNT}:role/mlflow-prod-task",
        *operators,
        f"arn:aws:iam::{ACCOUNT}:role/mlflow-prod-backup",
    ]


def test_an_operator_that_is_not_a_role_arn_is_refused_before_anything_is_created():
    run = run_prod(raise_errors=False, artifactStore={"operatorRoleArns": ["arn:aws:iam::123456789012:user/alice"]})
    assert isinstance(run.error, ConfigError) and "artifactStore.operatorRoleArns.0" in str(run.error)
    assert run.resources == []


def test_only_the_task_role_is_granted_the_artifact_bucket(prod_run):
    bucket_arn = artifact_bucket_arn(prod_run)
    grants = [r for r in prod_run.of_type("aws:iam/rolePolicy:RolePolicy") if bucket_arn in json.dumps(r.plain)]
    assert [g.plain["role"] for g in grants] == ["mlflow-prod-task-id"]
    doc = policy(grants[0])
    assert statements(doc, "ReadWriteObjects")["Resource"] == [f"{bucket_arn}/*"]
    assert statements(doc, "ListTheBucket")["Resource"] == [bucket_arn]
    kms = statements(doc, "UseTheBucketKeyThroughS3")
    assert kms["Condition"] == {"StringEquals": {"kms:ViaService": f"s3.{REGION}.amazonaws.com"}}
    assert not any("*" == r for s in doc["Statement"] for r in s["Resource"])
