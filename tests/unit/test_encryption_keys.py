"""MLflow's own encryption keys (AI Gateway KEK passphrase, webhook secrets' Fernet key): the
contract names what MLflow 3.17.2 reads, the spec asks for them as secrets on both targets, and
the boot module loads them from NAME_FILE like the other secrets."""

from __future__ import annotations

import base64
import sys

import pytest
from cryptography.fernet import Fernet

from components.config import parse_settings
from components.specs.endpoints import ArtifactEndpoint, DatabaseEndpoint, JobQueueEndpoint
from components.specs.mlflow_server import mlflow_server_spec
from components.versions import MLFLOW_IMAGE_DIR
from images.mlflow import server_contract as contract

sys.path.insert(0, str(MLFLOW_IMAGE_DIR))
import mlflow_boot  # noqa: E402

# The shared job queue every spec with tracking.jobExecution (the default) needs.
QUEUE = JobQueueEndpoint("redis", 6379)

KEYS = {"MLFLOW_CRYPTO_KEK_PASSPHRASE", "MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY"}
DB = DatabaseEndpoint(host="postgres", port=5432, name="mlflow", user="mlflow")
MINIO = ArtifactEndpoint(bucket="mlflow", s3_endpoint_url="http://minio:9000", static_credentials=True,
                         create_bucket=True)  # fmt: skip
S3 = ArtifactEndpoint(bucket="prod-artifacts", region="eu-west-1")


def test_the_contract_names_what_mlflow_reads():
    from mlflow.environment_variables import MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY
    from mlflow.utils import crypto

    assert contract.CRYPTO_KEK_PASSPHRASE == crypto.CRYPTO_KEK_PASSPHRASE_ENV_VAR
    assert contract.CRYPTO_KEK_VERSION == crypto.CRYPTO_KEK_VERSION_ENV_VAR
    assert contract.WEBHOOK_ENCRYPTION_KEY == MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY.name
    assert KEYS <= set(contract.SECRET_NAMES)
    assert contract.CRYPTO_KEK_VERSION not in contract.SECRET_NAMES


@pytest.mark.parametrize("target", ["docker", "aws"])
def test_every_server_gets_the_keys_as_secrets_and_the_kek_version_as_plain_env(target):
    if target == "docker":
        spec = mlflow_server_spec(parse_settings({"target": "docker"}).tracking, DB, MINIO, job_queue=QUEUE)
    else:
        # As components/aws/platform.server_spec builds it: basic-auth, no static keys.
        tracking = parse_settings({"target": "docker"}).tracking.model_copy(update={"artifacts": "direct"})
        spec = mlflow_server_spec(tracking, DB, S3, app_name="basic-auth", job_queue=QUEUE)
    assert KEYS <= set(spec.secret_env)
    assert not KEYS & set(spec.env)
    assert spec.env["MLFLOW_CRYPTO_KEK_VERSION"] == "1"
    assert not any(key in " ".join(spec.argv) for key in KEYS)


def test_boot_loads_the_keys_from_their_files(tmp_path):
    fernet = contract.fernet_key(bytes(range(32)))
    environ = {}
    for name, value in ((contract.CRYPTO_KEK_PASSPHRASE, "p" * 64), (contract.WEBHOOK_ENCRYPTION_KEY, fernet)):
        path = tmp_path / name.lower()
        path.write_text(value + "\n")
        environ[f"{name}_FILE"] = str(path)
    mlflow_boot.load_file_secrets(environ)
    assert environ[contract.CRYPTO_KEK_PASSPHRASE] == "p" * 64
    assert environ[contract.WEBHOOK_ENCRYPTION_KEY] == fernet


def test_fernet_keys_are_url_safe_base64_of_32_bytes_as_fernet_wants():
    raw = bytes([0xFB, 0xFF, 0xBF] * 10 + [0xFE, 0xFF])  # standard base64: '+' and '/'
    standard = base64.b64encode(raw).decode()
    assert "+" in standard and "/" in standard
    key = contract.fernet_key_from_base64(standard)
    assert key == contract.fernet_key(raw) and "+" not in key and "/" not in key and len(key) == 44
    assert Fernet(key).decrypt(Fernet(key).encrypt(b"signing secret")) == b"signing secret"
    with pytest.raises(ValueError):
        contract.fernet_key(b"short")
    # Not any string: a generated password of letters and digits is no Fernet key.
    with pytest.raises(ValueError):
        Fernet("a" * 64)
