"""MLflow's basic-auth app on Docker (`auth.mode: mlflow`): its admin, session key and the
declared users, as secrets for the tracking server."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from components import access
from components.config.docker import DockerAuthSettings
from components.generated import generated_secret
from images.mlflow import server_contract as contract

LENGTHS = contract.GENERATED_SECRET_LENGTHS


@dataclass(frozen=True)
class MlflowAuthArgs:
    settings: DockerAuthSettings
    """The stack's `auth`: the admin's name, the users and roles to declare."""


class MlflowAuth(pulumi.ComponentResource):
    """Store-like: exposes `secrets` (keyed by the contract's names) for the tracking server, the
    admin's `username` and secret `password`, and `users` (user -> password, secret)."""

    secrets: dict[str, pulumi.Output[str]]
    username: pulumi.Output[str]
    password: pulumi.Output[str]
    users: pulumi.Output[dict[str, str]]

    def __init__(self, name: str, args: MlflowAuthArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlflow-platform:docker:MlflowAuth", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.username = pulumi.Output.from_input(args.settings.admin_username)
        self.password = generated_secret(f"{name}-admin", LENGTHS[contract.AUTH_ADMIN_PASSWORD], child)
        passwords = access.user_passwords(name, args.settings, child)
        self.users = access.users_output(passwords)
        self.secrets = {
            contract.AUTH_ADMIN_PASSWORD: self.password,
            # Shared by every worker of every replica, or sessions break between them.
            contract.FLASK_SECRET_KEY: generated_secret(f"{name}-session", LENGTHS[contract.FLASK_SECRET_KEY], child),
            contract.AUTH_DECLARATION: access.declaration(args.settings, passwords),
        }
        self.register_outputs({"username": self.username})
