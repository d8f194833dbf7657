"""The access-log bucket: ALB access logs and VPC flow logs, SSE-S3 (the only encryption ALB logs support).

It is the audit trail of who reached the server, so `pulumi destroy` leaves it in place, with its
policy, encryption, public-access block and lifecycle (the logs still expire on schedule), rather
than failing on a non-empty bucket or force-deleting the logs (docs/aws.md, Destroying).
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.aws.lib.buckets import abort_incomplete_uploads, expire_noncurrent_versions, private_bucket
from components.aws.lib.policies import statement
from components.aws.lib.providers import AwsContext
from components.config.aws import AwsLogSettings

ALB_PREFIX = "alb"
FLOW_LOG_PREFIX = "vpc-flow-logs"
# Regions older than August 2022 deliver ALB logs from a regional ELB account, not the service principal.
LEGACY_ELB_REGIONS = frozenset({
    "us-east-1", "us-east-2", "us-west-1", "us-west-2", "af-south-1", "ap-east-1", "ap-south-1",
    "ap-northeast-1", "ap-northeast-2", "ap-northeast-3", "ap-southeast-1", "ap-southeast-2", "ap-southeast-3",
    "ca-central-1", "eu-central-1", "eu-west-1", "eu-west-2", "eu-west-3", "eu-south-1", "eu-north-1",
    "me-south-1", "sa-east-1", "us-gov-west-1", "us-gov-east-1",
})  # fmt: skip


@dataclass(frozen=True)
class LogArchiveArgs:
    logs: AwsLogSettings
    ctx: AwsContext


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
        self.register_outputs({"bucketName": self.bucket_name})
