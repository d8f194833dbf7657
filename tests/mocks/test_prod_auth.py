"""Who may use the server: basic-auth (BasicAuthCredentials), or sign-in at the load balancer
(oidc, cognito) with the egress it needs and a client secret that must be a Pulumi secret.
"""

from __future__ import annotations

import json

import pytest

from components.aws.load_balancer import OTLP_RULE_PRIORITY
from components.config import ConfigError
from components.specs import otlp
from tests.mocks.prod_helpers import (
    AUTH_IS_SECRET,
    COGNITO,
    EGRESS,
    INGRESS,
    OIDC,
    alb_egress,
    aws_outputs,
    container,
    prod_section,
    reveal,
    rules_of,
    run_prod,
    secret_paths,
    sg_id,
    strip_secrets,
)


@pytest.fixture(scope="module")
def oidc_run():
    return run_prod(secret_keys=AUTH_IS_SECRET, auth={"mode": "oidc", "oidc": OIDC})


def test_basic_auth_hands_the_tasks_three_keys_of_one_secret(prod_run):
    """The admin password, the session key and the users' declaration: one secret, each key an
    ECS secret of its own, pinned to the version this program wrote."""
    secret = prod_run.one("aws:secretsmanager/secret:Secret", "auth")
    version = prod_run.one("aws:secretsmanager/secretVersion:SecretVersion", "auth")
    assert set(json.loads(reveal(version.inputs["secretString"]))) == {
        "admin_password",
        "flask_secret_key",
        "auth_declaration",
    }
    arn, version_id = (
        aws_outputs(secret.typ, secret.name, {})["arn"],
        aws_outputs(version.typ, version.name, {})["versionId"],
    )
    secrets = {s["name"]: s["valueFrom"] for s in container(prod_run)["secrets"]}
    assert secrets["MLFLOW_AUTH_ADMIN_PASSWORD"] == f"{arn}:admin_password::{version_id}"
    assert secrets["MLFLOW_FLASK_SERVER_SECRET_KEY"] == f"{arn}:flask_secret_key::{version_id}"
    assert secrets["MLFLOW_PLATFORM_AUTH_DECLARATION"] == f"{arn}:auth_declaration::{version_id}"


@pytest.mark.parametrize("mode", ["oidc", "cognito"])
def test_alb_reaches_the_identity_provider_over_https_when_it_signs_users_in(mode, oidc_run):
    run = oidc_run if mode == "oidc" else run_prod(auth={"mode": "cognito", "cognito": COGNITO})
    # The ALB redeems the sign-in code at the token endpoint and reads userinfo itself.
    assert alb_egress(run) == [("tcp", 443, 443, "0.0.0.0/0"), ("tcp", 5000, 5000, sg_id(run, "tasks"))]
    (idp,) = [r for r in rules_of(run, EGRESS, sg_id(run, "alb")) if r["fromPort"] == 443]
    assert "identity provider" in idp["description"]
    # Nothing else opens up: the world still reaches only 80/443 of the ALB.
    assert sorted(r["fromPort"] for r in rules_of(run, INGRESS, sg_id(run, "alb"))) == [80, 443]


def test_alb_has_no_internet_egress_without_sign_in_at_the_alb(prod_run):
    assert alb_egress(prod_run) == [("tcp", 5000, 5000, sg_id(prod_run, "tasks"))]  # basic-auth: the tasks only
    internal = run_prod(auth={"mode": "none"}, loadBalancer={**prod_section("loadBalancer"), "internal": True})
    assert alb_egress(internal) == [("tcp", 5000, 5000, sg_id(internal, "tasks"))]


def test_oidc_signs_in_at_the_alb_with_a_secret_client_secret(oidc_run):
    run = oidc_run
    https = run.named("mlflow-prod-https")
    # The client secret makes the listener's actions secret as a whole.
    assert secret_paths(https.inputs) == ["defaultActions"]
    sign_in, forward = reveal(https.inputs["defaultActions"])
    assert sign_in["type"] == "authenticate-oidc" and sign_in["order"] == 1
    assert sign_in["authenticateOidc"]["clientSecret"] == "not-in-plain-text"
    assert sign_in["authenticateOidc"]["onUnauthenticatedRequest"] == "authenticate"
    assert forward["type"] == "forward" and forward["order"] == 2
    assert "not-in-plain-text" not in json.dumps(strip_secrets(https.inputs))
    assert "username" not in run.outputs and "password" not in run.outputs
    secrets = {s["name"] for s in container(run)["secrets"]}
    assert secrets == {
        "MLFLOW_DB_PASSWORD", "MLFLOW_DB_OWNER_PASSWORD", "MLFLOW_CRYPTO_KEK_PASSPHRASE", "MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY",
        "MLFLOW_SERVER_JOB_HUEY_REDIS_URL",
    }  # fmt: skip
    command = container(run)["command"]
    assert command[command.index("--app-name") + 1] == "platform"  # ours, without MLflow's basic-auth


@pytest.mark.parametrize("secret_keys", [(), ("mlflow-platform:database",)])
def test_a_plain_text_oidc_client_secret_is_refused_before_anything_is_registered(secret_keys):
    run = run_prod(secret_keys=secret_keys, raise_errors=False, auth={"mode": "oidc", "oidc": OIDC})
    assert isinstance(run.error, ConfigError)
    assert list(dict(run.error.problems)) == ["auth.oidc.clientSecret"]
    assert "pulumi config set --secret --path mlflow-platform:auth.oidc.clientSecret" in str(run.error)
    assert OIDC["clientSecret"] not in str(run.error)
    assert [r.typ for r in run.resources if r.typ != "pulumi:pulumi:Stack"] == []


LISTENER_RULE = "aws:lb/listenerRule:ListenerRule"


@pytest.mark.parametrize("mode", ["oidc", "cognito"])
def test_otlp_exports_keep_the_alb_sign_in_but_get_401_not_a_redirect(mode, oidc_run):
    """An OpenTelemetry exporter cannot follow a redirect to a sign-in page: /v1/traces answers
    401 without a session (AWS's `deny`), and forwards with one, like every other path."""
    run = oidc_run if mode == "oidc" else run_prod(auth={"mode": "cognito", "cognito": COGNITO})
    https = run.named("mlflow-prod-https")
    rule = run.one(LISTENER_RULE, "otlp-traces")
    assert rule.inputs["listenerArn"] == aws_outputs(https.typ, https.name, {})["arn"]
    assert rule.plain["priority"] == OTLP_RULE_PRIORITY
    assert rule.plain["conditions"] == [{"pathPattern": {"values": [otlp.TRACES_PATH]}}]
    sign_in, forward = reveal(rule.inputs["actions"])
    (default_sign_in, default_forward) = reveal(https.inputs["defaultActions"])
    key = "authenticateOidc" if mode == "oidc" else "authenticateCognito"
    assert sign_in["type"] == default_sign_in["type"] == f"authenticate-{mode}" and sign_in["order"] == 1
    # Everything of the listener's sign-in but what happens to a request without a session.
    assert sign_in[key]["onUnauthenticatedRequest"] == "deny"
    assert {**sign_in[key], "onUnauthenticatedRequest": "authenticate"} == default_sign_in[key]
    assert forward == {"type": "forward", "order": 2, "targetGroupArn": default_forward["targetGroupArn"]}
    if mode == "oidc":  # the client secret stays a secret on the rule too
        assert secret_paths(rule.inputs) == ["actions"]
        assert "not-in-plain-text" not in json.dumps(strip_secrets(rule.inputs))


def test_with_basic_auth_otlp_takes_the_default_forward_and_mlflow_checks_it(prod_run):
    # The only rule is the ALB's own 404 for /metrics (it forwards nothing).
    (rule,) = prod_run.of_type(LISTENER_RULE)
    assert rule.name.endswith("-no-metrics")
    assert [a["type"] for a in reveal(rule.inputs["actions"])] == ["fixed-response"]
