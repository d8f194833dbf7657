"""The artifact store: a private, versioned, SSE-KMS bucket only the tracking server's task role can use.

Exposes the bucket name and ARN, the key ARN and `access_policy()`, the IAM grant a role needs.
"""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

from components.aws.buckets import abort_incomplete_uploads, expire_noncurrent_versions, private_bucket
from components.aws.kms import artifact_key
from components.aws.policies import document, statement
from components.aws.providers import AwsContext
from components.config.aws import AwsArtifactStoreSettings

# Object operations of MLflow's S3 artifact repository (multipart uploads included).
OBJECT_ACTIONS = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"]
# What only the tracking server may do with objects; everyone else is denied by the bucket policy.
GUARDED_ACTIONS = [*OBJECT_ACTIONS, "s3:GetObjectVersion", "s3:DeleteObjectVersion", "s3:PutObjectAcl"]


class ArtifactStore(pulumi.ComponentResource):
    bucket_name: pulumi.Output[str]
    bucket_arn: pulumi.Output[str]
    kms_key_arn: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        settings: AwsArtifactStoreSettings,
        ctx: AwsContext,
        accessor_role_arn: pulumi.Input[str],
        opts: pulumi.ResourceOptions,
        operator_role_arns: list[pulumi.Input[str]] | None = None,
    ):
        """`accessor_role_arn`: the role that reads and writes objects (the task role);
        `operator_role_arns`: roles that may too (backups, restores, a destroy with forceDestroy)."""
        super().__init__("mlflow-platform:aws:ArtifactStore", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        key_arn = settings.kms_key_arn or artifact_key(f"{name}-key", ctx, child).arn
        self.kms_key_arn = pulumi.Output.from_input(key_arn)

        def only_the_server(bucket_arn: pulumi.Output[str]) -> list[dict]:
            # An explicit deny beats any IAM allow elsewhere in the account (admins included):
            # artifacts are read and written by the tracking server and the named operators only
            # (without them, the documented backup, a restore and a forceDestroy all fail).
            return [
                statement(
                    "OnlyTheServerAndOperatorsTouchObjects",
                    GUARDED_ACTIONS,
                    [pulumi.Output.concat(bucket_arn, "/*")],
                    effect="Deny",
                    Principal="*",
                    # Negated with several values: denied unless the principal is one of them.
                    Condition={"ArnNotEquals": {"aws:PrincipalArn": [accessor_role_arn, *(operator_role_arns or [])]}},
                )
            ]

        bucket, _ = private_bucket(
            name,
            child,
            bucket_name=settings.bucket,
            force_destroy=settings.force_destroy,
            encryption=aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                apply_server_side_encryption_by_default=aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                    sse_algorithm="aws:kms", kms_master_key_id=self.kms_key_arn
                ),
                # One data key per bucket rather than per object: far fewer KMS calls (cost, throttling).
                bucket_key_enabled=True,
            ),
            lifecycle_rules=[
                abort_incomplete_uploads(settings.abort_incomplete_upload_days),
                expire_noncurrent_versions(settings.noncurrent_version_expiration_days),
            ],
            policy_statements=only_the_server,
        )
        self.bucket_name = bucket.bucket
        self.bucket_arn = bucket.arn
        self.register_outputs({"bucketName": self.bucket_name, "bucketArn": self.bucket_arn})

    def access_policy(self, region: str) -> pulumi.Output[str]:
        """Read and write objects of this bucket, list it, and use its key for S3 only."""
        return document(
            statement("ListTheBucket", ["s3:ListBucket", "s3:GetBucketLocation"], [self.bucket_arn]),
            statement("ReadWriteObjects", OBJECT_ACTIONS, [pulumi.Output.concat(self.bucket_arn, "/*")]),
            statement(
                "UseTheBucketKeyThroughS3",
                ["kms:Decrypt", "kms:GenerateDataKey"],
                [self.kms_key_arn],
                Condition={"StringEquals": {"kms:ViaService": f"s3.{region}.amazonaws.com"}},
            ),
        )
