"""The artifact store: a private, versioned, SSE-KMS bucket only the tracking server's task role can use.

Exposes, as the Docker stores do, `endpoint` and `secrets` (none here: the task role grants
access, no key is handed out); and the bucket's ARN, the key ARN and `access_policy()`, the IAM
grant a role needs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.aws.lib import kms
from components.aws.lib.buckets import abort_incomplete_uploads, expire_noncurrent_versions, private_bucket
from components.aws.lib.policies import document, statement
from components.aws.lib.providers import AwsContext
from components.aws.lib.secrets import SecretRef
from components.config.aws import AwsArtifactStoreSettings
from components.specs.endpoints import ArtifactEndpoint

# Object operations of MLflow's S3 artifact repository (multipart uploads included).
OBJECT_ACTIONS = [
    "s3:GetObject",
    "s3:PutObject",
    "s3:DeleteObject",
    "s3:AbortMultipartUpload",
    "s3:ListMultipartUploadParts",
]
# What only the tracking server may do with objects; everyone else is denied by the bucket policy.
GUARDED_ACTIONS = [*OBJECT_ACTIONS, "s3:GetObjectVersion", "s3:DeleteObjectVersion", "s3:PutObjectAcl"]


@dataclass(frozen=True)
class ArtifactStoreArgs:
    settings: AwsArtifactStoreSettings
    ctx: AwsContext
    # The role that reads and writes objects (the task role).
    accessor_role_arn: pulumi.Input[str]
    # Roles that may too (backups, restores, a destroy with forceDestroy).
    operator_role_arns: Sequence[pulumi.Input[str]] = ()


class ArtifactStore(pulumi.ComponentResource):
    # Known once the bucket exists (its name).
    endpoint: pulumi.Output[ArtifactEndpoint]
    # No static keys: the task role is granted the bucket (`access_policy`).
    secrets: dict[str, SecretRef]
    bucket_name: pulumi.Output[str]
    bucket_arn: pulumi.Output[str]
    kms_key_arn: pulumi.Output[str]

    def __init__(self, name: str, args: ArtifactStoreArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlflow-platform:aws:ArtifactStore", name, None, opts)
        settings, ctx = args.settings, args.ctx
        accessor_role_arn, operator_role_arns = args.accessor_role_arn, args.operator_role_arns
        self._region = ctx.region
        child = pulumi.ResourceOptions(parent=self)
        # S3 uses the key with the caller's rights (the task role's grant, `access_policy`), with
        # the bucket's ARN as encryption context (bucket keys): no service principal needs a statement.
        # A new key applies to new objects only: older ones stay under the key they were written
        # with, which must then stay enabled (docs/aws.md, "KMS keys").
        key_arn = settings.kms_key_arn or kms.key(f"{name}-key", ctx, "artifacts", "artifact bucket", child).arn
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
                    Condition={"ArnNotEquals": {"aws:PrincipalArn": [accessor_role_arn, *operator_role_arns]}},
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
        self.endpoint = bucket.bucket.apply(lambda bucket_name: ArtifactEndpoint(bucket=bucket_name, region=ctx.region))
        self.secrets = {}
        self.register_outputs({"bucketName": self.bucket_name, "bucketArn": self.bucket_arn})

    def access_policy(self) -> pulumi.Output[str]:
        """Read and write objects of this bucket, list it, and use its key for S3 only."""
        return document(
            statement("ListTheBucket", ["s3:ListBucket", "s3:GetBucketLocation"], [self.bucket_arn]),
            statement("ReadWriteObjects", OBJECT_ACTIONS, [pulumi.Output.concat(self.bucket_arn, "/*")]),
            statement(
                "UseTheBucketKeyThroughS3",
                ["kms:Decrypt", "kms:GenerateDataKey"],
                [self.kms_key_arn],
                Condition={"StringEquals": {"kms:ViaService": f"s3.{self._region}.amazonaws.com"}},
            ),
        )
