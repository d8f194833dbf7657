"""A JSON secret in Secrets Manager, encrypted with the platform key."""

from __future__ import annotations

import json

import pulumi
import pulumi_aws as aws


def json_secret(name: str, description: str, values: pulumi.Output[dict], kms_key_arn: pulumi.Input[str],
                opts: pulumi.ResourceOptions) -> aws.secretsmanager.Secret:  # fmt: skip
    """The secret and its value; ECS reads single keys of it (`<arn>:<key>::`)."""
    secret = aws.secretsmanager.Secret(
        name,
        aws.secretsmanager.SecretArgs(description=description, kms_key_id=kms_key_arn, recovery_window_in_days=30),
        opts=opts,
    )
    aws.secretsmanager.SecretVersion(
        name,
        aws.secretsmanager.SecretVersionArgs(secret_id=secret.id,
                                             secret_string=pulumi.Output.secret(values.apply(json.dumps))),
        opts=opts,
    )
    return secret
