"""Customer-managed KMS keys, one per purpose, each with an explicit key policy.

Every key: rotated yearly, 30 days to cancel a deletion, an alias `alias/mlflow-<stack>-<purpose>`,
and a policy written here (no key is left with the policy AWS applies when none is given).
Each policy has the same first statement, the account administers the key (AWS's own default
statement, written out: without it nobody could manage the key, and AWS refuses a policy that
locks the caller out). Roles of this stack use a key through IAM grants that name it and pin
it to one service (`kms:ViaService`: lib/iam.py, artifact_store.py, metadata_store.py). The only
other statements are for the AWS services that use a key under their own service principal
(CloudWatch Logs, Fargate, CloudWatch alarms), each pinned to this account and stack by an
encryption-context condition, or for alarms (which pass no context) by the source account and ARN. Which key is which, who uses it and why it is separate: docs/aws.md, "KMS keys".
"""

from __future__ import annotations

from collections.abc import Sequence

import pulumi
import pulumi_aws as aws

from components.aws.lib.policies import document
from components.aws.lib.providers import AwsContext

# The encryption context CloudWatch Logs passes for a log group (its ARN), and the two Fargate
# passes for a task's ephemeral storage (CloudWatch Logs and ECS developer guides, KMS sections).
LOGS_CONTEXT = "kms:EncryptionContext:aws:logs:arn"
FARGATE_CLUSTER_ACCOUNT = "kms:EncryptionContext:aws:ecs:clusterAccount"
FARGATE_CLUSTER_NAME = "kms:EncryptionContext:aws:ecs:clusterName"
FARGATE = "fargate.amazonaws.com"
# Global (not regional) service principal of CloudWatch alarms.
CLOUDWATCH = "cloudwatch.amazonaws.com"


def account_administers(ctx: AwsContext) -> dict:
    """The account, i.e. its IAM policies, decides who administers and uses the key."""
    return {
        "Sid": "AccountAdministers",
        "Effect": "Allow",
        "Principal": {"AWS": pulumi.Output.concat("arn:", ctx.partition, ":iam::", ctx.account_id, ":root")},
        "Action": "kms:*",
        "Resource": "*",
    }


def logs_may_use(ctx: AwsContext, log_group_prefixes: Sequence[str], sid: str = "CloudWatchLogsOfThisStack") -> dict:
    """CloudWatch Logs encrypts (and decrypts, when read) the log groups whose names start with
    one of `log_group_prefixes`, and no other: its requests carry the group's ARN as context."""
    return {
        "Sid": sid,
        "Effect": "Allow",
        "Principal": {"Service": ctx.service_host("logs")},
        "Action": ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"],
        "Resource": "*",
        "Condition": {"ArnLike": {LOGS_CONTEXT: [ctx.arn("logs", f"log-group:{p}*") for p in log_group_prefixes]}},
    }


def fargate_may_use(ctx: AwsContext, cluster_name_pattern: str) -> list[dict]:
    """Fargate encrypts the ephemeral storage of tasks in clusters of this account named like
    `cluster_name_pattern`: it generates a data key (never in plaintext), and grants itself the
    right to decrypt it, for that context only (ECS developer guide, fargate-create-storage-key)."""
    cluster = {FARGATE_CLUSTER_ACCOUNT: ctx.account_id}
    name = {FARGATE_CLUSTER_NAME: cluster_name_pattern}
    return [
        {
            "Sid": "FargateDataKeysForThisCluster",
            "Effect": "Allow",
            "Principal": {"Service": FARGATE},
            "Action": "kms:GenerateDataKeyWithoutPlaintext",
            "Resource": "*",
            "Condition": {"StringEquals": cluster, "StringLike": name},
        },
        {
            "Sid": "FargateDecryptGrantForThisCluster",
            "Effect": "Allow",
            "Principal": {"Service": FARGATE},
            "Action": "kms:CreateGrant",
            "Resource": "*",
            "Condition": {
                "StringEquals": cluster,
                "StringLike": name,
                "ForAllValues:StringEquals": {"kms:GrantOperations": ["Decrypt"]},
            },
        },
    ]


def key(
    name: str,
    ctx: AwsContext,
    purpose: str,
    description: str,
    opts: pulumi.ResourceOptions,
    *statements: dict,
    region: str | None = None,
) -> aws.kms.Key:
    """A customer-managed key for one purpose (`alias/mlflow-<stack>-<purpose>`), its policy the
    account's administration plus `statements`; in `region` when given (the provider's own
    otherwise: pulumi-aws 7 takes a region per resource)."""
    created = aws.kms.Key(
        name,
        aws.kms.KeyArgs(
            description=f"mlflow-platform {ctx.stack}: {description}",
            enable_key_rotation=True,
            deletion_window_in_days=30,
            policy=document(account_administers(ctx), *statements),
            region=region,
        ),
        opts=opts,
    )
    aws.kms.Alias(
        name,
        aws.kms.AliasArgs(name=f"alias/mlflow-{ctx.stack}-{purpose}", target_key_id=created.key_id, region=region),
        opts=opts,
    )
    return created


def cloudwatch_alarms_may_use(ctx: AwsContext, alarm_name_prefix: str) -> dict:
    """CloudWatch publishes the alarms named `alarm_name_prefix*` of this account to a topic
    encrypted with the key: SNS needs a data key under CloudWatch's own principal (SNS developer
    guide, "compatibility with AWS services"). CloudWatch passes the alarm as the source."""
    return {
        "Sid": "CloudWatchAlarmsOfThisStack",
        "Effect": "Allow",
        "Principal": {"Service": CLOUDWATCH},
        "Action": ["kms:Decrypt", "kms:GenerateDataKey*"],
        "Resource": "*",
        "Condition": {
            "StringEquals": {"aws:SourceAccount": ctx.account_id},
            "ArnLike": {"aws:SourceArn": ctx.arn("cloudwatch", f"alarm:{alarm_name_prefix}*")},
        },
    }
