"""The access-log bucket: ALB access logs, VPC flow logs and S3 server access logs of the artifact
bucket, SSE-S3 (the only encryption ALB logs and S3 server access logs support). It does not log
its own access: logs of a log bucket written into itself would never stop (FSBP S3.9's exception).

It is the audit trail of who reached the server, so `pulumi destroy` leaves it in place, with its
policy, encryption, public-access block and lifecycle (the logs still expire on schedule), rather
than failing on a non-empty bucket or force-deleting the logs (docs/aws.md, Destroying).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.aws.lib.buckets import abort_incomplete_uploads, expire_noncurrent_versions, private_bucket
from components.aws.lib.policies import statement
from components.aws.lib.providers import AwsContext
from components.config.aws import AwsLogSettings

ALB_PREFIX = "alb"
FLOW_LOG_PREFIX = "vpc-flow-logs"
S3_ACCESS_PREFIX = "s3-access"
S3_LOG_DELIVERY = "logging.s3.amazonaws.com"
# Regions older than August 2022 deliver ALB logs from a regional ELB account, not the service principal.
LEGACY_ELB_REGIONS = frozenset({
    "us-east-1", "us-east-2", "us-west-1", "us-west-2", "af-south-1", "ap-east-1", "ap-south-1",
    "ap-northeast-1", "ap-northeast-2", "ap-northeast-3", "ap-southeast-1", "ap-southeast-2", "ap-southeast-3",
    "ca-central-1", "eu-central-1", "eu-west-1", "eu-west-2", "eu-west-3", "eu-south-1", "eu-north-1",
    "me-south-1", "sa-east-1", "us-gov-west-1", "us-gov-east-1",
})  # fmt: skip


@dataclass(frozen=True)
class LoggedBucket:
    """A bucket whose server access logs go to `s3-access/<key>/`."""

    key: str
    bucket: pulumi.Input[str]
    arn: pulumi.Input[str]


@dataclass(frozen=True)
class LogArchiveArgs:
    logs: AwsLogSettings
    ctx: AwsContext
    # Buckets whose server access logs are delivered here.
    logged_buckets: Sequence[LoggedBucket] = ()


class LogArchive(pulumi.ComponentResource):
    bucket_name: pulumi.Output[str]
    bucket_arn: pulumi.Output[str]
    # The bucket policy that lets log delivery write: a log source switches on after it.
    policy: aws.s3.BucketPolicy

    def __init__(self, name: str, args: LogArchiveArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlflow-platform:aws:LogArchive", name, None, opts)
        ctx = args.ctx
        days = args.logs.access_log_expiration_days

        elb_principals: list[dict] = [{"Service": "logdelivery.elasticloadbalancing.amazonaws.com"}]
        if ctx.region in LEGACY_ELB_REGIONS:
            account = aws.elb.get_service_account_output(opts=ctx.invoke(self))
            elb_principals.append({"AWS": account.arn})

        def delivery(bucket_arn: pulumi.Output[str]) -> list[dict]:
            alb_objects = pulumi.Output.concat(bucket_arn, f"/{ALB_PREFIX}/AWSLogs/", ctx.account_id, "/*")
            flow_objects = pulumi.Output.concat(bucket_arn, f"/{FLOW_LOG_PREFIX}/AWSLogs/", ctx.account_id, "/*")
            same_account = {"StringEquals": {"aws:SourceAccount": ctx.account_id}}
            statements = [
                statement(f"AlbAccessLogs{i}", ["s3:PutObject"], [alb_objects], Principal=principal)
                for i, principal in enumerate(elb_principals)
            ]
            statements += [
                statement("FlowLogsWrite", ["s3:PutObject"], [flow_objects],
                          Principal={"Service": "delivery.logs.amazonaws.com"}, Condition=same_account),
                statement("FlowLogsAclCheck", ["s3:GetBucketAcl"], [bucket_arn],
                          Principal={"Service": "delivery.logs.amazonaws.com"}, Condition=same_account),
            ]  # fmt: skip
            if args.logged_buckets:
                # S3 delivers server access logs as its logging service, for the named source buckets
                # of this account only (S3 user guide, "Permissions for log delivery": a bucket policy,
                # since ACLs are off under BucketOwnerEnforced).
                statements.append(
                    statement("S3ServerAccessLogs", ["s3:PutObject"],
                              [pulumi.Output.concat(bucket_arn, f"/{S3_ACCESS_PREFIX}/*")],
                              Principal={"Service": S3_LOG_DELIVERY},
                              Condition={**same_account, "ArnLike": {"aws:SourceArn": [b.arn for b in args.logged_buckets]}})
                )  # fmt: skip
            return statements

        expire_logs = aws.s3.BucketLifecycleConfigurationRuleArgs(
            id="expire-logs",
            status="Enabled",
            filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=""),
            expiration=aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(days=days),
        )
        bucket, self.policy = private_bucket(
            f"{name}-logs",
            # Every piece retained, not only the bucket: a bucket left without its public-access
            # block, TLS-only policy or expiry rule would be a worse bucket than the one deployed.
            pulumi.ResourceOptions(parent=self, retain_on_delete=True),
            encryption=aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                apply_server_side_encryption_by_default=aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
                    sse_algorithm="AES256"
                ),
            ),
            lifecycle_rules=[abort_incomplete_uploads(7), expire_noncurrent_versions(30), expire_logs],
            policy_statements=delivery,
        )
        self.bucket_name = bucket.bucket
        self.bucket_arn = bucket.arn
        for logged in args.logged_buckets:
            # Not retained: it is the source bucket's setting, and goes with it.
            aws.s3.BucketLogging(
                f"{name}-{logged.key}",
                aws.s3.BucketLoggingInitArgs(
                    bucket=logged.bucket,
                    target_bucket=bucket.bucket,
                    target_prefix=f"{S3_ACCESS_PREFIX}/{logged.key}/",
                    # Stated, not left to S3's default, so what GetBucketLogging reads back is what was
                    # written; partitioned by event date (<prefix><account>/<region>/<bucket>/YYYY/MM/DD/),
                    # what Athena's partition projection expects.
                    target_object_key_format=aws.s3.BucketLoggingTargetObjectKeyFormatArgs(
                        partitioned_prefix=aws.s3.BucketLoggingTargetObjectKeyFormatPartitionedPrefixArgs(
                            partition_date_source="EventTime"
                        )
                    ),
                ),
                # After the policy that lets S3 deliver, or the first logs are dropped.
                opts=pulumi.ResourceOptions(parent=self, depends_on=[self.policy]),
            )
        self.register_outputs({"bucketName": self.bucket_name})
