"""mlflow-platform: an MLflow tracking server on Docker (dev) or AWS (prod), from stack config."""

import pulumi

from components.config.loader import load_settings
from components.platform import build_platform

# Validate everything first (every key, and secrets given in plain text): a bad config fails
# here, before any resource is registered.
settings = load_settings()
platform = build_platform(settings)

pulumi.export("trackingUri", platform.tracking_uri)
if platform.username is not None:
    pulumi.export("username", platform.username)
if platform.password is not None:
    pulumi.export("password", platform.password)
pulumi.export("clientEnv", platform.client_env())
if platform.tls_certificate is not None:
    pulumi.export("tlsCertificate", platform.tls_certificate)
if platform.schema_upgrade is not None:
    pulumi.export("schemaUpgrade", platform.schema_upgrade)
if platform.users is not None:
    pulumi.export("users", platform.users)
if platform.alarm_topic_arn is not None:
    pulumi.export("alarmTopicArn", platform.alarm_topic_arn)
if platform.grafana_url is not None:
    pulumi.export("grafanaUrl", platform.grafana_url)
if platform.grafana_password is not None:
    pulumi.export("grafanaPassword", pulumi.Output.secret(platform.grafana_password))
