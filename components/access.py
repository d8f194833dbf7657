"""The declared users' generated passwords and the declaration that carries them, on every target."""

from __future__ import annotations

import pulumi

from components.config.access import AccessSettings
from components.generated import generated_secret
from components.specs.access import render_declaration
from images.mlflow import server_contract as contract


def user_passwords(name: str, access: AccessSettings, opts: pulumi.ResourceOptions) -> dict[str, pulumi.Output[str]]:
    """One RandomPassword per declared user, `<name>-user-<username>`: drawn once, kept across
    deploys (no keepers), a removed user's destroyed with it."""
    length = contract.GENERATED_SECRET_LENGTHS[contract.AUTH_USER_PASSWORD]
    return {user: generated_secret(f"{name}-user-{user}", length, opts) for user in sorted(access.users)}


def declaration(access: AccessSettings, passwords: dict[str, pulumi.Output[str]]) -> pulumi.Output[str]:
    """The declaration the boot step applies (components/specs/access.py), secret: it holds the passwords."""
    values: pulumi.Output[dict[str, str]] = (
        pulumi.Output.all(**passwords) if passwords else pulumi.Output.from_input({})
    )
    return pulumi.Output.secret(values.apply(lambda known: render_declaration(access, known)))


def users_output(passwords: dict[str, pulumi.Output[str]]) -> pulumi.Output[dict[str, str]]:
    """The `users` stack output: user -> password, a secret as a whole."""
    values = pulumi.Output.all(**passwords) if passwords else pulumi.Output.from_input({})
    return pulumi.Output.secret(values)
