"""The two roles of the tracking server's tasks, each with only what it needs.

execution role: what ECS does before the container runs (pull the image, fetch the secrets, write logs).
task role: what MLflow itself does (the artifact bucket, through the bucket's key). Nothing else.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pulumi
import pulumi_aws as aws

from components.aws.lib.policies import document, service_trust, statement
from components.aws.lib.providers import AwsContext
from components.aws.lib.secrets import SecretRef, secret_arns

ECS_TASKS = "ecs-tasks.amazonaws.com"


def task_service_role(name: str, description: str, ctx: AwsContext, opts: pulumi.ResourceOptions) -> aws.iam.Role:
    """A role only ECS tasks of this account and region may assume; its policies are added separately."""
    return aws.iam.Role(
        name,
        aws.iam.RoleArgs(
            description=description,
            assume_role_policy=service_trust(ECS_TASKS, ctx.account_id, ctx.arn("ecs", "*")),
            max_session_duration=3600,
        ),
        opts=opts,
    )


def execution_policy(
    *,
    repository_arn: pulumi.Input[str],
    log_group_arn: pulumi.Input[str],
    secrets: Mapping[str, SecretRef],
    secrets_key_arn: pulumi.Input[str],
    region: str,
    extra_log_group_arns: Sequence[pulumi.Input[str]] = (),
) -> pulumi.Output[str]:
    """`secrets`: what the container is handed (env name -> reference): their secrets may be read.
    `extra_log_group_arns`: groups the task's other containers write (the audit-log sidecar)."""
    return document(
        # GetAuthorizationToken has no resource-level permissions: "*" is the only form AWS accepts.
        statement("EcrToken", ["ecr:GetAuthorizationToken"], ["*"]),
        statement("PullTheImage", ["ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage"],
                  [repository_arn]),
        statement("WriteContainerLogs", ["logs:CreateLogStream", "logs:PutLogEvents"],
                  [pulumi.Output.concat(arn, ":log-stream:*") for arn in (log_group_arn, *extra_log_group_arns)]),
        statement("ReadTheTaskSecrets", ["secretsmanager:GetSecretValue"], secret_arns(secrets)),
        statement("DecryptTheTaskSecrets", ["kms:Decrypt"], [secrets_key_arn],
                  Condition={"StringEquals": {"kms:ViaService": f"secretsmanager.{region}.amazonaws.com"}}),
    )  # fmt: skip


def attach(
    name: str, role: aws.iam.Role, policy: pulumi.Input[str], opts: pulumi.ResourceOptions
) -> aws.iam.RolePolicy:
    return aws.iam.RolePolicy(name, aws.iam.RolePolicyArgs(role=role.id, policy=policy), opts=opts)
