"""Encryption at rest of the dev artifact store, both engines, under mocks: a generated key that
never changes, handed to the engine as an owner-only file (never env or command), and the
tracking server told to set SSE-S3 as the bucket's default (tests/e2e/test_artifact_encryption.py
proves the SeaweedFS side on disk)."""

from __future__ import annotations

import base64
import json
import tomllib

import pytest

from components.specs.minio import KMS_KEY_NAME, KMS_SECRET_KEY_FILE
from components.specs.seaweedfs import SECURITY_FILE
from images.mlflow import server_contract as contract
from tests.mocks.docker_finders import MINIO, MLFLOW, SEAWEEDFS, children, containers
from tests.mocks.prod_helpers import container_env
from tests.mocks.test_seaweedfs_store import seaweedfs_config
from tests.pulumi_mocks import default_outputs, is_secret, reveal, run_program, secret_paths

ARTIFACT_STORE = "mlflow-platform:docker:ArtifactStore"
BYTES = "random:index/randomBytes:RandomBytes"


@pytest.fixture(scope="module")
def seaweedfs_run():
    return run_program(seaweedfs_config(), stack="dev")


def sse_key(run) -> dict[str, str]:
    """The store's one generated encryption key (its base64 and hex, as the provider gives them)."""
    (key,) = [r for r in children(run, ARTIFACT_STORE) if r.typ == BYTES]
    assert key.name == "artifact-store-sse-key"
    # 32 bytes for both engines: MinIO's NewBuiltin refuses any other length
    # (internal/kms/secret-key.go); SeaweedFS's s3.sse.kek is 32 bytes in hex (s3_sse_s3.go).
    assert key.inputs["length"] == 32
    # No keepers: a changed keeper draws a new key and every stored object is lost.
    assert "keepers" not in key.inputs
    return default_outputs(key.typ, key.deployed_name, key.inputs)


def upload_at(container, path: str) -> dict:
    uploads = container.inputs["uploads"]
    files = [u["file"] for u in reveal(uploads)]
    index = files.index(path)
    assert is_secret(uploads) or f"[{index}].content" in secret_paths(uploads), "the key file is not secret"
    return reveal(uploads)[index]


def nowhere_in_plain_inputs(run, value: str) -> None:
    for name, container in containers(run).items():
        plain = json.dumps([container.inputs.get(k) for k in ("envs", "command", "entrypoints", "healthcheck")])
        assert value not in plain, f"the encryption key is in {name}'s env, command or health check"


def test_minio_reads_its_kms_key_from_an_owner_only_file(dev_run):
    key = sse_key(dev_run)
    minio = containers(dev_run)[MINIO]
    envs = dict(e.split("=", 1) for e in minio.inputs["envs"])
    # MinIO reads MINIO_KMS_SECRET_KEY_FILE (internal/kms/config.go) and refuses both it and
    # MINIO_KMS_SECRET_KEY at once; the key itself is never the env.
    assert envs["MINIO_KMS_SECRET_KEY_FILE"] == KMS_SECRET_KEY_FILE
    assert "MINIO_KMS_SECRET_KEY" not in envs and "MINIO_KMS_AUTO_ENCRYPTION" not in envs
    upload = upload_at(minio, KMS_SECRET_KEY_FILE)
    assert (upload["permissions"], upload["owner"], upload["group"]) == ("0400", "0", "0")
    # `<key-name>:<base64 of 32 bytes>`, no newline (ParseSecretKey parses the file as is).
    assert upload["content"] == f"{KMS_KEY_NAME}:{key['base64']}"
    name, encoded = upload["content"].split(":", 1)
    assert name == "mlflow-dev-sse" and len(base64.b64decode(encoded, validate=True)) == 32
    # Off the data volume: a copy of /data alone decrypts nothing.
    assert not upload["file"].startswith(minio.inputs["volumes"][0]["containerPath"] + "/")
    nowhere_in_plain_inputs(dev_run, key["base64"])


def test_seaweedfs_reads_its_kek_from_an_owner_only_security_toml(seaweedfs_run):
    key = sse_key(seaweedfs_run)
    seaweedfs = containers(seaweedfs_run)[SEAWEEDFS]
    upload = upload_at(seaweedfs, SECURITY_FILE)
    # /etc/seaweedfs is on viper's search path (weed/util/config.go); weed runs as uid 1000.
    assert upload["file"] == "/etc/seaweedfs/security.toml"
    assert (upload["permissions"], upload["owner"], upload["group"]) == ("0400", "1000", "1000")
    assert tomllib.loads(upload["content"]) == {"s3": {"sse": {"kek": key["hex"]}}}
    assert len(bytes.fromhex(key["hex"])) == 32
    assert not upload["file"].startswith(seaweedfs.inputs["volumes"][0]["containerPath"] + "/")
    assert not seaweedfs.inputs.get("envs")  # WEED_S3_SSE_KEK would also work, in plain env
    nowhere_in_plain_inputs(seaweedfs_run, key["hex"])


@pytest.mark.parametrize("engine", ["minio", "seaweedfs"])
def test_the_tracking_server_sets_sse_s3_as_the_bucket_default(engine, dev_run, seaweedfs_run):
    run = dev_run if engine == "minio" else seaweedfs_run
    envs = dict(e.split("=", 1) for e in containers(run)[MLFLOW].inputs["envs"])
    assert envs[contract.BUCKET_ENCRYPTION] == "AES256"
    assert envs["MLFLOW_BOOT_CREATE_BUCKET"] == "mlflow"


def test_prod_leaves_its_bucket_s_encryption_to_the_program(prod_run):
    """The prod bucket is SSE-KMS by its own configuration (test_prod_artifacts.py); the task role
    may not change it, and the boot does not try."""
    assert contract.BUCKET_ENCRYPTION not in container_env(prod_run)
