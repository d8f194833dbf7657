"""MLflow's own encryption keys on Docker: the AI Gateway's KEK passphrase and the webhook
secrets' Fernet key, generated once and never changed (no keepers)."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from components.docker.common import formerly
from components.generated import generated_fernet_key, generated_secret
from images.mlflow import server_contract as contract


@dataclass(frozen=True)
class EncryptionKeysArgs:
    """Nothing to choose: the keys' formats are MLflow's (server_contract)."""


class EncryptionKeys(pulumi.ComponentResource):
    """Store-like: exposes `secrets`, keyed by the contract's names, for the tracking server."""

    secrets: dict[str, pulumi.Output[str]]
    """contract.CRYPTO_KEK_PASSPHRASE and contract.WEBHOOK_ENCRYPTION_KEY -> their values (secret)."""

    def __init__(self, name: str, args: EncryptionKeysArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlflow-platform:docker:EncryptionKeys", name, None, opts)
        # The Docker rule for children (docs/architecture.md): each also answers to its short name.
        self.secrets = {
            contract.CRYPTO_KEK_PASSPHRASE: generated_secret(
                f"{name}-kek-passphrase",
                contract.GENERATED_SECRET_LENGTHS[contract.CRYPTO_KEK_PASSPHRASE],
                pulumi.ResourceOptions(parent=self, aliases=formerly("kek-passphrase")),
            ),
            contract.WEBHOOK_ENCRYPTION_KEY: generated_fernet_key(
                f"{name}-webhook-key", pulumi.ResourceOptions(parent=self, aliases=formerly("webhook-key"))
            ),
        }
        self.register_outputs({})
