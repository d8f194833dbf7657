"""Who may use the server: MLflow's basic-auth app, or OIDC / Cognito sign-in at the load balancer.

basic-auth: the admin password and the Flask session key are generated, kept in Secrets Manager
and handed to the tasks as ECS secrets. The ALB modes put an authenticate action before forward.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from components import access
from components.aws.lib.secrets import SecretRef, contract_secret
from components.config.aws import AuthSettings
from components.generated import generated_secret
from images.mlflow import server_contract as contract

LENGTHS = contract.GENERATED_SECRET_LENGTHS

ADMIN_PASSWORD_KEY = "admin_password"
SESSION_KEY_KEY = "flask_secret_key"
DECLARATION_KEY = "auth_declaration"


@dataclass(frozen=True)
class BasicAuthCredentialsArgs:
    settings: AuthSettings
    # Encrypts the secret.
    kms_key_arn: pulumi.Input[str]


class BasicAuthCredentials(pulumi.ComponentResource):
    """The admin credentials and session key of MLflow's basic-auth app, and the declared users
    (auth.users, auth.roles) with their generated passwords."""

    username: str
    password: pulumi.Output[str]
    # contract.AUTH_ADMIN_PASSWORD, FLASK_SECRET_KEY and AUTH_DECLARATION -> their keys of the secret.
    secrets: dict[str, SecretRef]
    # user -> generated password (the `users` stack output), secret.
    users: pulumi.Output[dict[str, str]]

    def __init__(self, name: str, args: BasicAuthCredentialsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlflow-platform:aws:BasicAuthCredentials", name, None, opts)
        settings = args.settings
        child = pulumi.ResourceOptions(parent=self)
        self.password = generated_secret(f"{name}-admin", LENGTHS[contract.AUTH_ADMIN_PASSWORD], child)
        # Shared by every worker of every task, or sessions break between them.
        session_key = generated_secret(f"{name}-session", LENGTHS[contract.FLASK_SECRET_KEY], child)
        self.username = settings.admin_username
        passwords = access.user_passwords(name, settings, child)
        self.users = access.users_output(passwords)
        # One secret, so a changed declaration is a new version of it, and the task definition
        # (pinned to version ids) a new revision: the service rolls, each new task's boot applies it.
        secret, self.secrets = contract_secret(
            name,
            "MLflow basic-auth: admin password, session key, declared users and roles",
            {
                contract.AUTH_ADMIN_PASSWORD: (ADMIN_PASSWORD_KEY, self.password),
                contract.FLASK_SECRET_KEY: (SESSION_KEY_KEY, session_key),
                contract.AUTH_DECLARATION: (DECLARATION_KEY, access.declaration(settings, passwords)),
            },
            args.kms_key_arn,
            child,
        )
        self.register_outputs({"username": self.username, "secretArn": secret.arn})


def _sign_in(settings: AuthSettings, on_unauthenticated: str) -> tuple[str, dict[str, Any]] | None:
    """The authenticate action's type and settings, for a listener's default action or a rule's."""
    if settings.mode == "oidc" and settings.oidc:
        oidc = settings.oidc
        return "authenticate-oidc", dict(
            issuer=oidc.issuer,
            authorization_endpoint=oidc.authorization_endpoint,
            token_endpoint=oidc.token_endpoint,
            user_info_endpoint=oidc.user_info_endpoint,
            client_id=oidc.client_id,
            client_secret=pulumi.Output.secret(oidc.client_secret.get_secret_value()),
            scope=oidc.scope,
            session_timeout=oidc.session_timeout_seconds,
            on_unauthenticated_request=on_unauthenticated,
        )
    if settings.mode == "cognito" and settings.cognito:
        cognito = settings.cognito
        return "authenticate-cognito", dict(
            user_pool_arn=cognito.user_pool_arn,
            user_pool_client_id=cognito.user_pool_client_id,
            user_pool_domain=cognito.user_pool_domain,
            session_timeout=cognito.session_timeout_seconds,
            on_unauthenticated_request=on_unauthenticated,
        )
    return None


def _authenticate(settings: AuthSettings, on_unauthenticated: str, action: type, oidc: type, cognito: type) -> Any:
    """The authenticate action in the given provider classes (a listener's or a rule's), or None."""
    found = _sign_in(settings, on_unauthenticated)
    if found is None:
        return None
    kind, values = found
    if kind == "authenticate-oidc":
        return action(type=kind, order=1, authenticate_oidc=oidc(**values))
    return action(type=kind, order=1, authenticate_cognito=cognito(**values))


def authenticate_action(settings: AuthSettings) -> aws.lb.ListenerDefaultActionArgs | None:
    """The ALB sign-in step before forwarding, for the oidc and cognito modes: a browser without a
    session is sent to the identity provider."""
    lb = aws.lb
    return _authenticate(
        settings, "authenticate", lb.ListenerDefaultActionArgs,
        lb.ListenerDefaultActionAuthenticateOidcArgs, lb.ListenerDefaultActionAuthenticateCognitoArgs,
    )  # fmt: skip


def authenticate_rule_action(settings: AuthSettings) -> aws.lb.ListenerRuleActionArgs | None:
    """The same sign-in for a listener rule whose clients are programs (an OTLP exporter): a request
    without a valid session gets 401, not a redirect to a sign-in page it cannot follow."""
    lb = aws.lb
    return _authenticate(
        settings, "deny", lb.ListenerRuleActionArgs,
        lb.ListenerRuleActionAuthenticateOidcArgs, lb.ListenerRuleActionAuthenticateCognitoArgs,
    )  # fmt: skip
