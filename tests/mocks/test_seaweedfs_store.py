"""The dev stack with `artifactStore.engine: seaweedfs`, under Pulumi mocks: the end-to-end tests'
S3 server (`weed mini`) in its pinned image, private, health-gated, keys in a secret file."""

from __future__ import annotations

import json

import pytest

from components.config import parse_settings
from components.specs.durations import go_duration
from components.specs.seaweedfs import IDENTITIES_FILE, s3_identities, seaweedfs_spec
from components.versions import SEAWEEDFS_IMAGE
from pulumi_mocks import fake_secret_text, is_secret, reveal, run_program, secret_paths, stack_config

CONTAINER = "docker:index/container:Container"
PASSWORD = "random:index/randomPassword:RandomPassword"


def seaweedfs_config() -> dict[str, str]:
    config = stack_config("dev")
    config["mlflow-platform:artifactStore"] = json.dumps({"engine": "seaweedfs"})
    return config


@pytest.fixture(scope="module")
def dev():
    return run_program(seaweedfs_config(), stack="dev")


def _settings():
    return parse_settings({"target": "docker", "artifactStore": {"engine": "seaweedfs"}}).artifact_store


def containers(run) -> dict[str, object]:
    return {r.name: r for r in run.of_type(CONTAINER)}


def store_keys(run) -> dict[str, str]:
    """The generated access / secret key of the artifact store, as the mocks generate them."""
    store = run.one("mlflow-platform:docker:ArtifactStore")
    return {r.name: fake_secret_text(r.name, int(r.inputs["length"]))
            for r in run.of_type(PASSWORD) if r.parent == store.urn}


def test_seaweedfs_takes_minio_s_place_under_the_same_component(dev):
    assert set(containers(dev)) == {"postgres", "seaweedfs", "mlflow-0", "nginx"}
    store = dev.one("mlflow-platform:docker:ArtifactStore")
    assert store.name == "artifact-store"
    assert containers(dev)["seaweedfs"].parent == store.urn


def test_the_container_runs_the_pinned_image_with_the_spec_command(dev):
    container = containers(dev)["seaweedfs"]
    seaweedfs = container.plain
    pulled = {r.inputs["name"] for r in dev.of_type("docker:index/remoteImage:RemoteImage")}
    assert SEAWEEDFS_IMAGE in pulled and not any("minio" in name for name in pulled)
    (own_image,) = [r for r in dev.of_type("docker:index/remoteImage:RemoteImage")
                    if r.parent == dev.one("mlflow-platform:docker:ArtifactStore").urn]
    assert own_image.inputs["name"] == SEAWEEDFS_IMAGE and own_image.inputs["keepLocally"] is True
    assert container.property_dependencies["image"] == [own_image.urn]
    spec = seaweedfs_spec(_settings())
    assert seaweedfs["entrypoints"] == ["/entrypoint.sh"]
    assert seaweedfs["command"] == list(spec.command)
    assert seaweedfs["command"][:2] == ["mini", "-dir=/data"]
    assert seaweedfs["name"] == "mlflow-dev-seaweedfs"


def test_on_the_backend_network_only_and_no_published_port(dev):
    backend = dev.one("docker:index/network:Network", "backend")
    seaweedfs = containers(dev)["seaweedfs"].inputs
    assert [n["name"] for n in seaweedfs["networksAdvanced"]] == [backend.inputs["name"]]
    assert seaweedfs["networksAdvanced"][0]["aliases"] == ["seaweedfs"]
    assert backend.inputs["internal"] is True
    assert not seaweedfs.get("ports")


def test_the_data_volume_is_named_mounted_at_data_and_kept(dev):
    volumes = {v.inputs["name"]: v for v in dev.of_type("docker:index/volume:Volume")}
    assert sorted(volumes) == ["mlflow-dev-postgres-data", "mlflow-dev-seaweedfs-data"]
    assert volumes["mlflow-dev-seaweedfs-data"].retain_on_delete
    assert containers(dev)["seaweedfs"].inputs["volumes"] == [
        {"volumeName": "mlflow-dev-seaweedfs-data", "containerPath": "/data"}]


def test_the_identities_file_is_a_secret_upload_the_weed_user_alone_can_read(dev):
    uploads = containers(dev)["seaweedfs"].inputs["uploads"]
    # The content is secret (the engine may wrap the whole list).
    assert is_secret(uploads) or secret_paths(uploads) == ["[0].content"]
    (plain,) = reveal(uploads)
    assert plain["file"] == IDENTITIES_FILE
    assert (plain["permissions"], plain["owner"], plain["group"]) == ("0400", "1000", "1000")
    keys = store_keys(dev)
    assert sorted(keys) == ["access-key", "secret-key"]
    assert plain["content"] == s3_identities(keys["access-key"], keys["secret-key"])


def test_the_keys_are_secret_and_in_no_env_command_or_health_check(dev):
    keys = store_keys(dev)
    assert len(dev.of_type(PASSWORD)) == 4  # postgres, store key + secret, proxy
    for name, container in containers(dev).items():
        plain_parts = json.dumps([container.inputs.get("envs"), container.inputs.get("command"),
                                  container.inputs.get("entrypoints"), container.inputs.get("healthcheck")])
        for key in keys.values():
            assert key not in plain_parts, f"a store key is in {name}'s env or command"
    # The tracking server gets them as files, like MinIO's.
    mlflow = containers(dev)["mlflow-0"]
    envs = dict(e.split("=", 1) for e in mlflow.inputs["envs"])
    files = {u["file"]: u for u in reveal(mlflow.inputs["uploads"])}
    assert "AWS_ACCESS_KEY_ID" not in envs and "AWS_SECRET_ACCESS_KEY" not in envs
    assert files[envs["AWS_ACCESS_KEY_ID_FILE"]]["content"] == keys["access-key"]
    assert files[envs["AWS_SECRET_ACCESS_KEY_FILE"]]["content"] == keys["secret-key"]
    uploads = mlflow.inputs["uploads"]
    if not is_secret(uploads):
        paths = secret_paths(uploads)
        for index, upload in enumerate(reveal(uploads)):
            if upload["file"] in (envs["AWS_ACCESS_KEY_ID_FILE"], envs["AWS_SECRET_ACCESS_KEY_FILE"]):
                assert f"[{index}].content" in paths and upload["permissions"] == "0400", upload["file"]


def test_health_gated_with_durations_in_go_s_form(dev):
    seaweedfs = containers(dev)["seaweedfs"].plain
    spec = seaweedfs_spec(_settings())
    health = seaweedfs["healthcheck"]
    assert health["tests"] == ["CMD", *spec.health.command]
    assert health["tests"][-1] == "http://127.0.0.1:8333/healthz"
    assert (health["interval"], health["timeout"], health["startPeriod"], health["startInterval"]) == (
        go_duration(spec.health.interval_seconds), go_duration(spec.health.timeout_seconds),
        go_duration(spec.health.start_period_seconds), "2s")
    assert health["interval"] == "5s" and health["startPeriod"] == "10s"
    assert seaweedfs["wait"] is True and seaweedfs["restart"] == "unless-stopped"
    assert "no-new-privileges:true" in seaweedfs["securityOpts"]


def test_the_tracking_server_uses_seaweedfs_and_starts_after_it(dev):
    by_name = containers(dev)
    envs = dict(e.split("=", 1) for e in by_name["mlflow-0"].inputs["envs"])
    assert envs["MLFLOW_S3_ENDPOINT_URL"] == "http://seaweedfs:8333"
    assert envs["MLFLOW_BOOT_CREATE_BUCKET"] == "mlflow"
    assert dev.depends_on(by_name["mlflow-0"], by_name["seaweedfs"])
    # Only the containers resolve http://seaweedfs:8333: nginx withholds presigned transfers.
    (conf,) = [u["content"] for u in by_name["nginx"].plain["uploads"] if u["file"] == "/etc/nginx/nginx.conf"]
    assert "'\"multipart_downloads_enabled\":false'" in conf


def test_an_explicit_image_replaces_the_pin():
    config = stack_config("dev")
    config["mlflow-platform:artifactStore"] = json.dumps({"engine": "seaweedfs",
                                                          "image": "chrislusf/seaweedfs:4.44_large_disk"})
    run = run_program(config, stack="dev")
    pulled = {r.inputs["name"] for r in run.of_type("docker:index/remoteImage:RemoteImage")}
    assert "chrislusf/seaweedfs:4.44_large_disk" in pulled and SEAWEEDFS_IMAGE not in pulled


def test_the_policy_pack_passes_on_the_seaweedfs_stack():
    from tests.policy.harness import analyze, record

    assert analyze(record(seaweedfs_config(), "dev").resources(raw=True), "dev") == []
