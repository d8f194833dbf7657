"""A JSON secret in Secrets Manager, encrypted with the platform key."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws


@dataclass(frozen=True)
class JsonSecret:
    secret: aws.secretsmanager.Secret
    version: aws.secretsmanager.SecretVersion

    @property
    def arn(self) -> pulumi.Output[str]:
        return self.secret.arn

    def value_from(self, key: str) -> pulumi.Output[str]:
        """ECS `valueFrom` of one JSON key, pinned to the version this program wrote.

        Built from the version's outputs, so a task definition that uses it is registered only
        once the value exists (a task started earlier would fail to fetch it), and a new value
        rolls the tasks onto it instead of leaving them on whatever AWSCURRENT was at start.
        Form: <secret arn>:<json key>:<version stage>:<version id>, the stage left empty.
        """
        return pulumi.Output.concat(self.version.secret_arn, f":{key}::", self.version.version_id)


def json_secret(name: str, description: str, values: pulumi.Output[dict], kms_key_arn: pulumi.Input[str],
                opts: pulumi.ResourceOptions) -> JsonSecret:  # fmt: skip
    """The secret and its value; ECS reads single keys of it (`JsonSecret.value_from`)."""
    secret = aws.secretsmanager.Secret(
        name,
        aws.secretsmanager.SecretArgs(description=description, kms_key_id=kms_key_arn, recovery_window_in_days=30),
        opts=opts,
    )
    version = aws.secretsmanager.SecretVersion(
        name,
        aws.secretsmanager.SecretVersionArgs(secret_id=secret.id,
                                             secret_string=pulumi.Output.secret(values.apply(json.dumps))),
        opts=opts,
    )
    return JsonSecret(secret, version)
