"""A JSON secret in Secrets Manager, encrypted with the secrets key, and references to its keys."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.aws.lib.container import EcsSecret


@dataclass(frozen=True)
class SecretRef:
    """One JSON key of a Secrets Manager secret, at the version this program wrote: what ECS hands
    a container as one environment variable. Its `valueFrom` text is written by
    `lib.container.value_from` only.

    Two ARNs of the same secret, each from the resource its user must wait for: `arn` from the
    secret (an IAM grant needs the secret to exist), `version_arn` and `version_id` from the
    version (a task definition built from them is registered only once the value exists: a task
    started earlier would fail to fetch it).
    """

    arn: pulumi.Output[str]
    key: str
    version_arn: pulumi.Output[str]
    # None: AWSCURRENT when a task starts (`rotated_by_aws`).
    version_id: pulumi.Output[str] | None

    @classmethod
    def rotated_by_aws(cls, arn: pulumi.Output[str], key: str) -> SecretRef:
        """A key of a secret another AWS service writes and rotates (RDS's master secret):
        never pinned, tasks read its current value when they start."""
        return cls(arn=arn, key=key, version_arn=arn, version_id=None)

    def resolved(self) -> pulumi.Output[EcsSecret]:
        return pulumi.Output.all(self.version_arn, self.version_id).apply(
            lambda values: EcsSecret(arn=values[0], key=self.key, version_id=values[1])
        )


def secret_arns(secrets: Mapping[str, SecretRef]) -> pulumi.Output[list[str]]:
    """The secrets behind `secrets`, each once, in the order of the map (what a role is granted)."""
    return pulumi.Output.all(*[ref.arn for ref in secrets.values()]).apply(lambda arns: list(dict.fromkeys(arns)))


@dataclass(frozen=True)
class JsonSecret:
    secret: aws.secretsmanager.Secret
    version: aws.secretsmanager.SecretVersion

    @property
    def arn(self) -> pulumi.Output[str]:
        return self.secret.arn

    def ref(self, key: str) -> SecretRef:
        """One JSON key of this secret, pinned to the version this program wrote."""
        return SecretRef(arn=self.secret.arn, key=key, version_arn=self.version.secret_arn,
                         version_id=self.version.version_id)  # fmt: skip


def json_secret(name: str, description: str, values: pulumi.Output[dict], kms_key_arn: pulumi.Input[str],
                opts: pulumi.ResourceOptions) -> JsonSecret:  # fmt: skip
    """The secret and its value; ECS reads single keys of it (`JsonSecret.ref`)."""
    secret = aws.secretsmanager.Secret(
        name,
        aws.secretsmanager.SecretArgs(description=description, kms_key_id=kms_key_arn, recovery_window_in_days=30),
        opts=opts,
    )
    version = aws.secretsmanager.SecretVersion(
        name,
        aws.secretsmanager.SecretVersionArgs(
            secret_id=secret.id, secret_string=pulumi.Output.secret(values.apply(json.dumps))
        ),
        opts=opts,
    )
    return JsonSecret(secret, version)


def contract_secret(
    name: str,
    description: str,
    values: Mapping[str, tuple[str, pulumi.Output[str]]],
    kms_key_arn: pulumi.Input[str],
    opts: pulumi.ResourceOptions,
) -> tuple[JsonSecret, dict[str, SecretRef]]:
    """One JSON secret holding `values` (contract env name -> (JSON key, value)), and the map the
    tracking server consumes: each contract name -> a reference to its key."""
    document = pulumi.Output.all(**{key: value for key, value in values.values()})
    secret = json_secret(name, description, document, kms_key_arn, opts)
    return secret, {env: secret.ref(key) for env, (key, _) in values.items()}
