"""Prod's declared users and roles (auth.users, auth.roles under auth.mode basic-auth): generated
passwords, the declaration as a key of the auth secret (never plain env), exported per user.

The ECS secret is pinned to the secret version this program wrote (SecretRef.version_id): a
changed declaration is a new version, so a new task definition revision and a rolling deploy whose
tasks apply it at boot."""

from __future__ import annotations

import json

import pytest

from images.mlflow import server_contract as contract
from tests.mocks.prod_helpers import aws_outputs, container_env, container_secrets, prod_section, reveal, run_prod
from tests.pulumi_mocks import generated_value

PASSWORD = "random:index/randomPassword:RandomPassword"
USERS = {"alice": {"roles": ["data-scientist"]}, "gina": {"roles": ["governance"]}}


@pytest.fixture(scope="module")
def users_run():
    return run_prod(auth={"mode": "basic-auth", "adminUsername": "admin", "users": USERS})


def declaration_of(run) -> dict:
    version = run.one("aws:secretsmanager/secretVersion:SecretVersion", "auth")
    return json.loads(json.loads(reveal(version.inputs["secretString"]))["auth_declaration"])


def test_each_user_gets_a_generated_password_under_the_auth_component(users_run):
    parent = users_run.one("mlflow-platform:aws:BasicAuthCredentials")
    users = {r.name: r for r in users_run.of_type(PASSWORD) if r.name.startswith("mlflow-prod-auth-user-")}
    assert set(users) == {"mlflow-prod-auth-user-alice", "mlflow-prod-auth-user-gina"}
    for resource in users.values():
        assert resource.inputs == {"length": 32, "special": False}
        assert resource.parent == parent.urn


def test_the_declaration_is_a_secret_key_with_the_generated_passwords(users_run):
    generated = {r.name: generated_value(r) for r in users_run.of_type(PASSWORD)}
    declaration = declaration_of(users_run)
    assert {name: user["password"] for name, user in declaration["users"].items()} == {
        "alice": generated["mlflow-prod-auth-user-alice"],
        "gina": generated["mlflow-prod-auth-user-gina"],
    }
    assert declaration["users"]["alice"]["roles"] == ["data-scientist"]
    env = container_env(users_run)
    assert contract.AUTH_DECLARATION not in env
    assert env[contract.PROMOTER_ROLES] == "governance"
    assert env["MLFLOW_BOOT_AUTH_DEFAULT_PERMISSION"] == "NO_PERMISSIONS"
    assert not any(password in json.dumps(env) for password in generated.values())
    secret = users_run.one("aws:secretsmanager/secret:Secret", "auth")
    version = users_run.one("aws:secretsmanager/secretVersion:SecretVersion", "auth")
    arn = aws_outputs(secret.typ, secret.name, {})["arn"]
    version_id = aws_outputs(version.typ, version.name, {})["versionId"]
    assert container_secrets(users_run)[contract.AUTH_DECLARATION] == f"{arn}:auth_declaration::{version_id}"


def test_users_are_a_secret_output(users_run):
    generated = {r.name: generated_value(r) for r in users_run.of_type(PASSWORD)}
    users, secret = users_run.outputs["users"]
    assert secret is True
    assert users == {"alice": generated["mlflow-prod-auth-user-alice"], "gina": generated["mlflow-prod-auth-user-gina"]}


def test_the_committed_prod_config_declares_the_layout_and_no_user(prod_run):
    """Applied at every boot even without users: the roles exist, and removing the last user
    deletes it."""
    assert declaration_of(prod_run)["users"] == {}
    assert set(declaration_of(prod_run)["roles"]) == {"data-scientist", "governance"}
    assert prod_run.outputs["users"] == ({}, True)


def test_sign_in_at_the_load_balancer_declares_nothing():
    run = run_prod(auth={"mode": "none"}, loadBalancer={**prod_section("loadBalancer"), "internal": True})
    assert contract.AUTH_DECLARATION not in container_secrets(run)
    assert contract.PROMOTER_ROLES not in container_env(run)
    assert "users" not in run.outputs
