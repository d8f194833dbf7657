"""The dev stack's tracking server (components/docker/tracking_server.py): MLflow containers that run
the spec, with the stores' secrets as files, started once the stores are healthy."""

from __future__ import annotations

import json

from components.config import parse_settings
from components.specs.endpoints import ArtifactEndpoint, DatabaseEndpoint, JobQueueEndpoint
from components.specs.mlflow_server import mlflow_server_spec
from images.mlflow import server_contract as contract
from tests.mocks.docker_finders import MINIO, MLFLOW, PASSWORD, POSTGRES, containers, generated_value
from tests.pulumi_mocks import reveal, stack_config

# The shared job queue every spec with tracking.jobExecution (the default) needs.
QUEUE = JobQueueEndpoint("redis", 6379)


def _dev_db():
    return DatabaseEndpoint(host="postgres", port=5432, name="mlflow", user="mlflow")


def _dev_minio():
    return ArtifactEndpoint(
        bucket="mlflow", s3_endpoint_url="http://minio:9000", static_credentials=True, create_bucket=True
    )


def test_mlflow_container_runs_exactly_the_spec(dev_run):
    settings = parse_settings(
        {
            k.split(":", 1)[1]: json.loads(v) if v.startswith(("{", "[")) else v
            for k, v in stack_config("dev").items()
            if k.startswith("mlflow-platform:")
        }
    )
    mlflow = containers(dev_run)[MLFLOW].inputs
    assert mlflow["name"] == "mlflow-dev-mlflow-0"
    assert mlflow["entrypoints"] + mlflow["command"] == list(
        mlflow_server_spec(settings.tracking, _dev_db(), _dev_minio(), job_queue=QUEUE).argv
    )
    assert mlflow["user"] == "10001:10001"
    assert mlflow["capabilities"] == {"drops": ["ALL"]}


def test_password_env_vars_point_to_files(dev_run):
    mlflow = containers(dev_run)[MLFLOW].inputs
    envs = dict(e.split("=", 1) for e in mlflow.get("envs", []))
    for secret in ("MLFLOW_DB_PASSWORD", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        assert secret not in envs
        path = envs[f"{secret}_FILE"]
        assert path in [u["file"] for u in reveal(mlflow["uploads"])]


def test_the_secret_files_hold_the_stores_secrets(dev_run):
    """The platform hands the server `{**database.secrets, **artifacts.secrets}`: each file holds
    what the store generated under the contract's name."""
    mlflow = containers(dev_run)[MLFLOW].inputs
    envs = dict(e.split("=", 1) for e in mlflow["envs"])
    files = {u["file"]: u["content"] for u in reveal(mlflow["uploads"])}
    generated = {r.name: generated_value(r) for r in dev_run.of_type(PASSWORD)}
    # The servers sign in as their own role; the owner's password is their boot step's.
    assert files[envs[f"{contract.DB_PASSWORD}_FILE"]] == generated["metadata-store-server-password"]
    assert files[envs[f"{contract.DB_OWNER_PASSWORD}_FILE"]] == generated["metadata-store-password"]
    assert envs[contract.DB_USER] == contract.SERVER_DB_ROLE and envs[contract.DB_OWNER_USER] == "mlflow"
    assert files[envs[f"{contract.S3_ACCESS_KEY_ID}_FILE"]] == generated["artifact-store-access-key"]
    assert files[envs[f"{contract.S3_SECRET_ACCESS_KEY}_FILE"]] == generated["artifact-store-secret-key"]


def test_start_order_follows_health(dev_run):
    by_name = containers(dev_run)
    assert dev_run.depends_on(by_name[MLFLOW], by_name[POSTGRES])
    assert dev_run.depends_on(by_name[MLFLOW], by_name[MINIO])
