"""What every target exports: how a client reaches the tracking server."""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi


@dataclass
class PlatformOutputs:
    """What every target exports: how a client reaches the tracking server."""

    tracking_uri: pulumi.Output[str]
    username: pulumi.Output[str] | None
    # Secret outputs: None where the target has no password (e.g. OIDC at the load balancer).
    password: pulumi.Output[str] | None
    # The self-signed certificate clients must trust (MLFLOW_TRACKING_SERVER_CERT_PATH), if any.
    tls_certificate: pulumi.Output[str] | None = None
    # Plain client settings the target needs (exported in clientEnv).
    client_settings: dict[str, str] = field(default_factory=dict)
    # Prod: what deploy/aws/upgrade.py needs for a schema upgrade (cluster, service, the upgrade
    # task definition, its network, the RDS instance to snapshot, the URNs to update first).
    schema_upgrade: pulumi.Output[dict] | None = None
    # Prod: the SNS topic every alarm notifies (subscribe a pager or a chat to it).
    alarm_topic_arn: pulumi.Output[str] | None = None
    # MLflow's basic-auth app: each declared user's generated password (auth.users), secret.
    users: pulumi.Output[dict[str, str]] | None = None
    # Dev with observability.enabled: where Grafana is, and its admin's (secret) password.
    grafana_url: pulumi.Output[str] | None = None
    grafana_password: pulumi.Output[str] | None = None

    def client_env(self) -> pulumi.Output[str]:
        """Ready-to-paste `export` lines for the MLflow client; secret, as it holds the password."""
        parts: dict[str, pulumi.Input[str]] = {"MLFLOW_TRACKING_URI": self.tracking_uri}
        if self.username is not None:
            parts["MLFLOW_TRACKING_USERNAME"] = self.username
        if self.password is not None:
            parts["MLFLOW_TRACKING_PASSWORD"] = self.password
        parts.update(self.client_settings)
        lines = pulumi.Output.all(**parts).apply(
            lambda values: "".join(f"export {name}='{value}'\n" for name, value in values.items())
        )
        return pulumi.Output.secret(lines) if self.password is not None else lines
