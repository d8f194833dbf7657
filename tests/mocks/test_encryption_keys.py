"""MLflow's own encryption keys on both stacks: generated once (no keepers), secret inputs,
uploaded as 0400 files on Docker, ECS secrets pinned to their version on AWS."""

from __future__ import annotations

import base64
import json

from cryptography.fernet import Fernet

from images.mlflow import server_contract as contract
from tests.mocks.docker_finders import MLFLOW, PASSWORD, containers, generated_value
from tests.mocks.prod_helpers import aws_outputs, container, container_env, policy, statements
from tests.pulumi_mocks import default_outputs, is_secret, reveal, secret_paths

BYTES = "random:index/randomBytes:RandomBytes"
KEYS = (contract.CRYPTO_KEK_PASSPHRASE, contract.WEBHOOK_ENCRYPTION_KEY)


def _never_regenerated(run, component: str) -> None:
    passphrase = run.one(PASSWORD, f"{component}-kek-passphrase")
    assert passphrase.inputs["length"] == 64 and passphrase.inputs["special"] is False
    webhook = run.one(BYTES, f"{component}-webhook-key")
    assert webhook.inputs["length"] == 32
    for resource in (passphrase, webhook):
        # A changed keeper would draw a new value and lose what the old one encrypted.
        assert "keepers" not in resource.inputs, resource.name


def _fernet_of(resource) -> str:
    return contract.fernet_key_from_base64(
        default_outputs(resource.typ, resource.deployed_name, resource.inputs)["base64"]
    )


def test_docker_uploads_the_keys_as_secret_owner_only_files(dev_run):
    _never_regenerated(dev_run, "encryption-keys")
    mlflow = containers(dev_run)[MLFLOW].inputs
    envs = dict(e.split("=", 1) for e in mlflow["envs"])
    assert envs["MLFLOW_CRYPTO_KEK_VERSION"] == "1"
    assert is_secret(mlflow["uploads"]) or secret_paths(mlflow["uploads"])
    uploads = {u["file"]: u for u in reveal(mlflow["uploads"])}
    for key in KEYS:
        assert key not in envs
        upload = uploads[envs[f"{key}_FILE"]]
        assert upload["permissions"] == "0400" and upload["file"].startswith("/run/secrets/")
    passphrase = generated_value(dev_run.one(PASSWORD, "encryption-keys-kek-passphrase"))
    webhook = _fernet_of(dev_run.one(BYTES, "encryption-keys-webhook-key"))
    assert uploads[envs[f"{contract.CRYPTO_KEK_PASSPHRASE}_FILE"]]["content"] == passphrase
    assert uploads[envs[f"{contract.WEBHOOK_ENCRYPTION_KEY}_FILE"]]["content"] == webhook
    Fernet(webhook)  # what MLflow does with it at import time
    plain = json.dumps([mlflow["envs"], mlflow["command"], mlflow["entrypoints"], mlflow["healthcheck"]])
    assert passphrase not in plain and webhook not in plain


def test_aws_hands_the_keys_as_version_pinned_ecs_secrets_and_grants_them(prod_run):
    _never_regenerated(prod_run, "mlflow-prod-encryption")
    secret = prod_run.one("aws:secretsmanager/secret:Secret", "encryption")
    version = prod_run.one("aws:secretsmanager/secretVersion:SecretVersion", "encryption")
    assert secret.inputs["kmsKeyId"]
    assert is_secret(version.inputs["secretString"])
    values = json.loads(reveal(version.inputs["secretString"]))
    assert set(values) == {"kek_passphrase", "webhook_encryption_key"}
    assert values["webhook_encryption_key"] == _fernet_of(prod_run.one(BYTES, "encryption-webhook-key"))
    assert len(base64.urlsafe_b64decode(values["webhook_encryption_key"])) == 32
    arn = aws_outputs(secret.typ, secret.name, {})["arn"]
    version_id = aws_outputs(version.typ, version.name, {})["versionId"]
    secrets = {s["name"]: s["valueFrom"] for s in container(prod_run)["secrets"]}
    assert secrets[contract.CRYPTO_KEK_PASSPHRASE] == f"{arn}:kek_passphrase::{version_id}"
    assert secrets[contract.WEBHOOK_ENCRYPTION_KEY] == f"{arn}:webhook_encryption_key::{version_id}"
    env = container_env(prod_run)
    assert not set(KEYS) & set(env) and env["MLFLOW_CRYPTO_KEK_VERSION"] == "1"
    granted = statements(policy(prod_run.one("aws:iam/rolePolicy:RolePolicy", "execution")), "ReadTheTaskSecrets")
    assert arn in granted["Resource"]
