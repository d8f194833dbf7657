"""The dev stack's artifact store, MinIO flavour (components/docker/artifact_store.py); the SeaweedFS
one is test_seaweedfs_store.py's."""

from __future__ import annotations

import pytest

from tests.mocks.docker_finders import MINIO, PASSWORD, children, containers, generated_value
from tests.pulumi_mocks import reveal

ARTIFACT_STORE = "mlflow-platform:docker:ArtifactStore"


def test_minio_runs_under_the_artifact_store_component(dev_run):
    store = dev_run.one(ARTIFACT_STORE)
    assert store.name == "artifact-store"
    minio = containers(dev_run)[MINIO]
    assert minio.parent == store.urn and minio.inputs["name"] == "mlflow-dev-minio"
    assert minio.inputs["networksAdvanced"][0]["aliases"] == ["minio"]
    assert not minio.inputs.get("ports")


def test_the_root_credentials_are_a_file_never_the_env(dev_run):
    minio = containers(dev_run)[MINIO].inputs
    envs = dict(e.split("=", 1) for e in minio.get("envs", []))
    assert "MINIO_ROOT_USER" not in envs and "MINIO_ROOT_PASSWORD" not in envs
    keys = sorted((r for r in children(dev_run, ARTIFACT_STORE) if r.typ == PASSWORD), key=lambda r: r.name)
    assert [r.name for r in keys] == ["artifact-store-access-key", "artifact-store-secret-key"]
    config_env = {u["file"]: u for u in reveal(minio["uploads"])}["/run/secrets/minio.env"]
    assert config_env["permissions"] == "0400" and config_env["owner"] == "0"
    assert all(generated_value(key) in config_env["content"] for key in keys)


def test_the_data_volume_is_named_mounted_and_kept(dev_run):
    (volume,) = [r for r in children(dev_run, ARTIFACT_STORE) if r.typ == "docker:index/volume:Volume"]
    assert volume.inputs["name"] == "mlflow-dev-minio-data" and volume.retain_on_delete
    assert containers(dev_run)[MINIO].inputs["volumes"] == [
        {"volumeName": "mlflow-dev-minio-data", "containerPath": "/data"}
    ]


def test_minio_is_pulled_from_quay_io_not_docker_hub(dev_run):
    """Docker Hub answers "pull access denied" for minio/minio since September 2026."""
    (minio,) = [i for i in dev_run.of_type("docker:index/remoteImage:RemoteImage") if "minio" in i.plain["name"]]
    assert minio.plain["name"].startswith("quay.io/minio/minio:RELEASE.")


@pytest.mark.parametrize(
    "image", ["minio/minio:RELEASE.2025-04-22T22-12-26Z", "docker.io/minio/minio:RELEASE.2025-04-22T22-12-26Z"]
)
def test_a_docker_hub_minio_image_is_refused_with_its_quay_io_name(image):
    from components.config import ConfigError, parse_settings

    with pytest.raises(ConfigError) as error:
        parse_settings({"target": "docker", "artifactStore": {"image": image}})
    assert "quay.io/minio/minio:RELEASE.2025-04-22T22-12-26Z" in str(error.value)
