"""components/specs/gc.py: the gc command line both targets run, and prod's task environment."""

from __future__ import annotations

import re

import pytest

from components.config import parse_settings
from components.specs.endpoints import ArtifactEndpoint, DatabaseEndpoint
from components.specs.gc import gc_command, gc_spec
from images.mlflow import server_contract as contract

# mlflow/cli/__init__.py (3.17.2), `gc --older-than`: the regex MLflow parses the value with. Every
# value the config accepts must parse there, or the scheduled task fails at its first run.
MLFLOW_OLDER_THAN = r"^((?P<days>[\.\d]+?)d)?((?P<hours>[\.\d]+?)h)?((?P<minutes>[\.\d]+?)m)?((?P<seconds>[\.\d]+?)s)?$"


@pytest.mark.parametrize("value", ["30d", "0s", "1d2h30m", "12h", "1.5d", "2m4s"])
def test_every_age_the_config_accepts_parses_in_mlflow(value):
    """What `gc.olderThan` accepts must parse in MLflow, or the scheduled task fails at its first run."""
    assert parse_settings({"target": "docker", "gc": {"olderThan": value}}).gc.older_than == value
    parts = re.match(MLFLOW_OLDER_THAN, value)
    assert parts is not None and any(parts.groupdict().values())
    assert gc_command(value) == ("python", "-m", "mlflow_gc", "--older-than", value)


def test_gc_signs_in_as_the_servers_role_and_finds_the_bucket_as_the_server_does():
    database = DatabaseEndpoint(host="db", port=5432, name="mlflow", user=contract.SERVER_DB_ROLE,
                                sslmode="verify-full", sslrootcert="/etc/rds.pem", owner="mlflow")  # fmt: skip
    spec = gc_spec("7d", database, ArtifactEndpoint(bucket="artifacts", region="eu-west-1"), "/scratch")
    assert spec.argv == gc_command("7d")
    assert spec.env[contract.DB_USER] == contract.SERVER_DB_ROLE
    assert contract.DB_OWNER_USER not in spec.env
    assert spec.env[contract.ARTIFACTS_DESTINATION] == "s3://artifacts/"
    assert spec.env[contract.DB_SSLROOTCERT] == "/etc/rds.pem"
    assert spec.secret_env == (contract.DB_PASSWORD,)
    assert not set(spec.env) & set(contract.SECRET_NAMES)


def test_a_store_with_static_keys_hands_them_to_gc_as_secrets():
    database = DatabaseEndpoint(host="postgres", port=5432, name="mlflow", user=contract.SERVER_DB_ROLE)
    store = ArtifactEndpoint(bucket="mlflow", s3_endpoint_url="http://minio:9000", static_credentials=True)
    spec = gc_spec("0s", database, store)
    assert spec.secret_env == (contract.DB_PASSWORD, contract.S3_ACCESS_KEY_ID, contract.S3_SECRET_ACCESS_KEY)
    assert spec.env["MLFLOW_S3_ENDPOINT_URL"] == "http://minio:9000"
