"""A private S3 bucket: the baseline both of our buckets share, so neither can forget a piece."""

from __future__ import annotations

from collections.abc import Callable

import pulumi
import pulumi_aws as aws

from components.aws.lib.policies import deny_insecure_transport, document


def private_bucket(
    name: str,
    opts: pulumi.ResourceOptions,
    *,
    encryption: aws.s3.BucketServerSideEncryptionConfigurationRuleArgs,
    lifecycle_rules: list[aws.s3.BucketLifecycleConfigurationRuleArgs],
    policy_statements: Callable[[pulumi.Output[str]], list[dict]] = lambda arn: [],
    bucket_name: str | None = None,
    force_destroy: bool = False,
) -> tuple[aws.s3.Bucket, aws.s3.BucketPolicy]:
    """Bucket with all four public-access blocks, ACLs disabled, default encryption, versioning,
    lifecycle rules and a policy that denies plain-HTTP access (plus `policy_statements`)."""
    bucket = aws.s3.Bucket(name, aws.s3.BucketArgs(bucket=bucket_name, force_destroy=force_destroy), opts=opts)
    pab = aws.s3.BucketPublicAccessBlock(
        name,
        aws.s3.BucketPublicAccessBlockArgs(
            bucket=bucket.id,
            block_public_acls=True,
            block_public_policy=True,
            ignore_public_acls=True,
            restrict_public_buckets=True,
        ),
        opts=opts,
    )
    # ACLs off: every object belongs to the bucket owner, whoever uploaded it.
    aws.s3.BucketOwnershipControls(
        name,
        aws.s3.BucketOwnershipControlsArgs(
            bucket=bucket.id,
            rule=aws.s3.BucketOwnershipControlsRuleArgs(object_ownership="BucketOwnerEnforced"),
        ),
        opts=opts,
    )
    aws.s3.BucketServerSideEncryptionConfiguration(
        name,
        aws.s3.BucketServerSideEncryptionConfigurationInitArgs(bucket=bucket.id, rules=[encryption]),
        opts=opts,
    )
    versioning = aws.s3.BucketVersioning(
        name,
        aws.s3.BucketVersioningInitArgs(
            bucket=bucket.id,
            versioning_configuration=aws.s3.BucketVersioningVersioningConfigurationArgs(status="Enabled"),
        ),
        opts=opts,
    )
    # Lifecycle rules on noncurrent versions need versioning to exist first.
    aws.s3.BucketLifecycleConfiguration(
        name,
        aws.s3.BucketLifecycleConfigurationArgs(bucket=bucket.id, rules=lifecycle_rules),
        opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=[versioning])),
    )
    policy = aws.s3.BucketPolicy(
        name,
        aws.s3.BucketPolicyArgs(
            bucket=bucket.id,
            policy=document(deny_insecure_transport(bucket.arn), *policy_statements(bucket.arn)),
        ),
        # After the public-access block, so a policy can never be briefly public.
        opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(depends_on=[pab])),
    )
    return bucket, policy


def abort_incomplete_uploads(days: int) -> aws.s3.BucketLifecycleConfigurationRuleArgs:
    return aws.s3.BucketLifecycleConfigurationRuleArgs(
        id="abort-incomplete-multipart-uploads",
        status="Enabled",
        filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=""),
        abort_incomplete_multipart_upload=aws.s3.BucketLifecycleConfigurationRuleAbortIncompleteMultipartUploadArgs(
            days_after_initiation=days
        ),
    )


def expire_noncurrent_versions(days: int) -> aws.s3.BucketLifecycleConfigurationRuleArgs:
    return aws.s3.BucketLifecycleConfigurationRuleArgs(
        id="expire-noncurrent-versions",
        status="Enabled",
        filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=""),
        noncurrent_version_expiration=aws.s3.BucketLifecycleConfigurationRuleNoncurrentVersionExpirationArgs(
            noncurrent_days=days
        ),
        # Deleted objects leave markers behind once their versions expire: clear those too.
        expiration=aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(expired_object_delete_marker=True),
    )
