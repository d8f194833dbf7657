"""MLflow's own encryption keys on AWS: the AI Gateway's KEK passphrase and the webhook secrets'
Fernet key, generated once (no keepers), kept in one Secrets Manager secret and handed to the
tasks as ECS secrets."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from components.aws.lib.secrets import SecretRef, contract_secret
from components.generated import generated_fernet_key, generated_secret
from images.mlflow import server_contract as contract

KEK_PASSPHRASE_KEY = "kek_passphrase"
WEBHOOK_KEY_KEY = "webhook_encryption_key"


@dataclass(frozen=True)
class EncryptionKeysArgs:
    # Encrypts the secret.
    kms_key_arn: pulumi.Input[str]


class EncryptionKeys(pulumi.ComponentResource):
    """Store-like: exposes `secrets`, keyed by the contract's names."""

    # contract.CRYPTO_KEK_PASSPHRASE and contract.WEBHOOK_ENCRYPTION_KEY -> their keys of the secret.
    secrets: dict[str, SecretRef]

    def __init__(self, name: str, args: EncryptionKeysArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlflow-platform:aws:EncryptionKeys", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        passphrase = generated_secret(
            f"{name}-kek-passphrase", contract.GENERATED_SECRET_LENGTHS[contract.CRYPTO_KEK_PASSPHRASE], child
        )
        webhook_key = generated_fernet_key(f"{name}-webhook-key", child)
        secret, self.secrets = contract_secret(
            name,
            "MLflow's encryption keys: AI Gateway KEK passphrase and webhook secrets key",
            {
                contract.CRYPTO_KEK_PASSPHRASE: (KEK_PASSPHRASE_KEY, passphrase),
                contract.WEBHOOK_ENCRYPTION_KEY: (WEBHOOK_KEY_KEY, webhook_key),
            },
            args.kms_key_arn,
            child,
        )
        self.register_outputs({"secretArn": secret.arn})
