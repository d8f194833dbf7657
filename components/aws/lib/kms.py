"""Customer-managed KMS keys: rotated yearly, 30-day deletion window, policies that name their users."""

from __future__ import annotations

import pulumi
import pulumi_aws as aws

from components.aws.lib.policies import document
from components.aws.lib.providers import AwsContext


def platform_key(name: str, ctx: AwsContext, opts: pulumi.ResourceOptions) -> aws.kms.Key:
    """Encrypts the Secrets Manager secrets, the RDS storage and the CloudWatch log groups."""
    root = pulumi.Output.concat("arn:", ctx.partition, ":iam::", ctx.account_id, ":root")
    policy = document(
        # The account (its IAM policies) administers the key: without this the key is unmanageable.
        {
            "Sid": "AccountAdministers",
            "Effect": "Allow",
            "Principal": {"AWS": root},
            "Action": "kms:*",
            "Resource": "*",
        },
        # CloudWatch Logs encrypts this stack's log groups, and nothing else, with it.
        {
            "Sid": "CloudWatchLogsOfThisAccount",
            "Effect": "Allow",
            "Principal": {"Service": ctx.service_host("logs")},
            "Action": ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
            "Resource": "*",
            "Condition": {"ArnLike": {"kms:EncryptionContext:aws:logs:arn": ctx.arn("logs", "log-group:*")}},
        },
    )
    return _rotated_key(name, ctx, "platform", "secrets, database storage and logs", opts, policy=policy)


def artifact_key(name: str, ctx: AwsContext, opts: pulumi.ResourceOptions) -> aws.kms.Key:
    """The artifact bucket's key. The default key policy: usable only through IAM grants of this account."""
    return _rotated_key(name, ctx, "artifacts", "artifact bucket", opts)


def _rotated_key(name: str, ctx: AwsContext, alias: str, purpose: str, opts: pulumi.ResourceOptions,
                 policy: pulumi.Input[str] | None = None) -> aws.kms.Key:  # fmt: skip
    """A customer-managed key, rotated yearly, 30 days to cancel a deletion, with an alias."""
    key = aws.kms.Key(
        name,
        aws.kms.KeyArgs(
            description=f"mlflow-platform {ctx.stack}: {purpose}",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            policy=policy,
        ),
        opts=opts,
    )
    aws.kms.Alias(
        name, aws.kms.AliasArgs(name=f"alias/mlflow-{ctx.stack}-{alias}", target_key_id=key.key_id), opts=opts
    )
    return key
