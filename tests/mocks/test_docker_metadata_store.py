"""The dev stack's metadata store (components/docker/metadata_store.py): PostgreSQL in a container."""

from __future__ import annotations

import json

from tests.mocks.docker_finders import PASSWORD, POSTGRES, children, containers, generated_value
from tests.pulumi_mocks import reveal

METADATA_STORE = "mlflow-platform:docker:MetadataStore"


def test_the_password_is_a_file_never_the_env(dev_run):
    postgres = containers(dev_run)[POSTGRES].inputs
    envs = dict(e.split("=", 1) for e in postgres.get("envs", []))
    assert envs["POSTGRES_PASSWORD_FILE"].startswith("/run/secrets/")
    assert "POSTGRES_PASSWORD" not in envs
    passwords = {r.name: r for r in children(dev_run, METADATA_STORE) if r.typ == PASSWORD}
    assert set(passwords) == {"metadata-store-password", "metadata-store-server-password"}
    files = {u["file"]: u for u in reveal(postgres["uploads"])}
    # PostgreSQL's superuser (the schema owner) gets the first; the servers' role is made by the
    # servers' boot step, so PostgreSQL never sees the second.
    assert files[envs["POSTGRES_PASSWORD_FILE"]]["content"] == generated_value(passwords["metadata-store-password"])
    server_password = generated_value(passwords["metadata-store-server-password"])
    assert server_password not in json.dumps(reveal(postgres["uploads"]))


def test_the_data_volume_is_named_mounted_and_kept(dev_run):
    (volume,) = [r for r in children(dev_run, METADATA_STORE) if r.typ == "docker:index/volume:Volume"]
    assert volume.inputs["name"] == "mlflow-dev-postgres-data" and volume.retain_on_delete
    assert containers(dev_run)[POSTGRES].inputs["volumes"] == [
        {"volumeName": "mlflow-dev-postgres-data", "containerPath": "/var/lib/postgresql/data"}
    ]


def test_postgres_runs_the_password_sync_wrapper(dev_run):
    from components.specs.postgres import ENTRYPOINT_PATH, ENTRYPOINT_SCRIPT

    postgres = containers(dev_run)[POSTGRES].inputs
    assert postgres["name"] == "mlflow-dev-postgres"
    assert postgres["entrypoints"] == [ENTRYPOINT_PATH]
    # 1 server × (2 workers × 2 pools × 42 + 2) + 10 (components/specs/connections.py).
    assert postgres["command"][:3] == ["postgres", "-c", "max_connections=180"]
    (wrapper,) = [u for u in reveal(postgres["uploads"]) if u["file"] == ENTRYPOINT_PATH]
    assert wrapper["content"] == ENTRYPOINT_SCRIPT and wrapper["permissions"] == "0755"
