"""The dev stack with `artifactStore.engine: seaweedfs`, under Pulumi mocks: the end-to-end tests'
S3 server (`weed mini`) in its pinned image, private, health-gated, keys in a secret file."""

from __future__ import annotations

import json

import pytest

from components.config import parse_settings
from components.specs.durations import go_duration
from components.specs.seaweedfs import IDENTITIES_FILE, s3_identities, seaweedfs_spec
from components.versions import SEAWEEDFS_IMAGE
from tests.mocks.docker_finders import (
    MLFLOW,
    NGINX,
    PASSWORD,
    POSTGRES,
    REDIS,
    SEAWEEDFS,
    containers,
    generated_value,
)
from tests.pulumi_mocks import is_secret, reveal, run_program, secret_paths, stack_config


def seaweedfs_config() -> dict[str, str]:
    config = stack_config("dev")
    config["mlflow-platform:artifactStore"] = json.dumps({"engine": "seaweedfs"})
    return config


@pytest.fixture(scope="module")
def seaweedfs_run():
    return run_program(seaweedfs_config(), stack="dev")


def _settings():
    return parse_settings({"target": "docker", "artifactStore": {"engine": "seaweedfs"}}).artifact_store


def store_keys(run) -> dict[str, str]:
    """The generated access / secret key of the artifact store, as the mocks generate them."""
    store = run.one("mlflow-platform:docker:ArtifactStore")
    return {r.name: generated_value(r) for r in run.of_type(PASSWORD) if r.parent == store.urn}


def test_seaweedfs_takes_minio_s_place_under_the_same_component(seaweedfs_run):
    assert set(containers(seaweedfs_run)) == {POSTGRES, SEAWEEDFS, MLFLOW, NGINX, REDIS}
    store = seaweedfs_run.one("mlflow-platform:docker:ArtifactStore")
    assert store.name == "artifact-store"
    assert containers(seaweedfs_run)[SEAWEEDFS].parent == store.urn


def test_the_container_runs_the_pinned_image_with_the_spec_command(seaweedfs_run):
    container = containers(seaweedfs_run)[SEAWEEDFS]
    seaweedfs = container.plain
    pulled = {r.inputs["name"] for r in seaweedfs_run.of_type("docker:index/remoteImage:RemoteImage")}
    assert SEAWEEDFS_IMAGE in pulled and not any("minio" in name for name in pulled)
    (own_image,) = [
        r
        for r in seaweedfs_run.of_type("docker:index/remoteImage:RemoteImage")
        if r.parent == seaweedfs_run.one("mlflow-platform:docker:ArtifactStore").urn
    ]
    assert own_image.inputs["name"] == SEAWEEDFS_IMAGE and own_image.inputs["keepLocally"] is True
    assert container.property_dependencies["image"] == [own_image.urn]
    spec = seaweedfs_spec(_settings())
    assert seaweedfs["entrypoints"] == ["/entrypoint.sh"]
    assert seaweedfs["command"] == list(spec.command)
    assert seaweedfs["command"][:2] == ["mini", "-dir=/data"]
    assert seaweedfs["name"] == "mlflow-dev-seaweedfs"


def test_on_the_backend_network_only_and_no_published_port(seaweedfs_run):
    backend = seaweedfs_run.one("docker:index/network:Network", "backend")
    seaweedfs = containers(seaweedfs_run)[SEAWEEDFS].inputs
    assert [n["name"] for n in seaweedfs["networksAdvanced"]] == [backend.inputs["name"]]
    assert seaweedfs["networksAdvanced"][0]["aliases"] == ["seaweedfs"]
    assert backend.inputs["internal"] is True
    assert not seaweedfs.get("ports")


def test_the_data_volume_is_named_mounted_at_data_and_kept(seaweedfs_run):
    volumes = {v.inputs["name"]: v for v in seaweedfs_run.of_type("docker:index/volume:Volume")}
    assert sorted(volumes) == ["mlflow-dev-postgres-data", "mlflow-dev-redis-data", "mlflow-dev-seaweedfs-data"]
    assert volumes["mlflow-dev-seaweedfs-data"].retain_on_delete
    assert containers(seaweedfs_run)[SEAWEEDFS].inputs["volumes"] == [
        {"volumeName": "mlflow-dev-seaweedfs-data", "containerPath": "/data"}
    ]


def test_the_identities_file_is_a_secret_upload_the_weed_user_alone_can_read(seaweedfs_run):
    uploads = containers(seaweedfs_run)[SEAWEEDFS].inputs["uploads"]
    # The content is secret (the engine may wrap the whole list).
    assert is_secret(uploads) or secret_paths(uploads) == ["[0].content", "[1].content"]
    plain = {u["file"]: u for u in reveal(uploads)}[IDENTITIES_FILE]
    assert (plain["permissions"], plain["owner"], plain["group"]) == ("0400", "1000", "1000")
    keys = store_keys(seaweedfs_run)
    assert sorted(keys) == ["artifact-store-access-key", "artifact-store-secret-key"]
    assert plain["content"] == s3_identities(keys["artifact-store-access-key"], keys["artifact-store-secret-key"])


def test_the_keys_are_secret_and_in_no_env_command_or_health_check(seaweedfs_run):
    keys = store_keys(seaweedfs_run)
    # postgres's owner and the servers' role, store key + secret, proxy, KEK passphrase, Redis
    assert len(seaweedfs_run.of_type(PASSWORD)) == 7
    for name, container in containers(seaweedfs_run).items():
        plain_parts = json.dumps(
            [
                container.inputs.get("envs"),
                container.inputs.get("command"),
                container.inputs.get("entrypoints"),
                container.inputs.get("healthcheck"),
            ]
        )
        for key in keys.values():
            assert key not in plain_parts, f"a store key is in {name}'s env or command"
    # The tracking server gets them as files, like MinIO's.
    mlflow = containers(seaweedfs_run)[MLFLOW]
    envs = dict(e.split("=", 1) for e in mlflow.inputs["envs"])
    files = {u["file"]: u for u in reveal(mlflow.inputs["uploads"])}
    assert "AWS_ACCESS_KEY_ID" not in envs and "AWS_SECRET_ACCESS_KEY" not in envs
    assert files[envs["AWS_ACCESS_KEY_ID_FILE"]]["content"] == keys["artifact-store-access-key"]
    assert files[envs["AWS_SECRET_ACCESS_KEY_FILE"]]["content"] == keys["artifact-store-secret-key"]
    uploads = mlflow.inputs["uploads"]
    if not is_secret(uploads):
        paths = secret_paths(uploads)
        for index, upload in enumerate(reveal(uploads)):
            if upload["file"] in (envs["AWS_ACCESS_KEY_ID_FILE"], envs["AWS_SECRET_ACCESS_KEY_FILE"]):
                assert f"[{index}].content" in paths and upload["permissions"] == "0400", upload["file"]


def test_health_gated_with_durations_in_go_s_form(seaweedfs_run):
    seaweedfs = containers(seaweedfs_run)[SEAWEEDFS].plain
    spec = seaweedfs_spec(_settings())
    health = seaweedfs["healthcheck"]
    assert health["tests"] == ["CMD", *spec.health.command]
    assert health["tests"][-1] == "http://127.0.0.1:8333/healthz"
    assert (health["interval"], health["timeout"], health["startPeriod"], health["startInterval"]) == (
        go_duration(spec.health.interval_seconds),
        go_duration(spec.health.timeout_seconds),
        go_duration(spec.health.start_period_seconds),
        "2s",
    )
    assert health["interval"] == "5s" and health["startPeriod"] == "10s"
    assert seaweedfs["wait"] is True and seaweedfs["restart"] == "unless-stopped"
    assert "no-new-privileges:true" in seaweedfs["securityOpts"]


def test_the_tracking_server_uses_seaweedfs_and_starts_after_it(seaweedfs_run):
    by_name = containers(seaweedfs_run)
    envs = dict(e.split("=", 1) for e in by_name[MLFLOW].inputs["envs"])
    assert envs["MLFLOW_S3_ENDPOINT_URL"] == "http://seaweedfs:8333"
    assert envs["MLFLOW_BOOT_CREATE_BUCKET"] == "mlflow"
    assert seaweedfs_run.depends_on(by_name[MLFLOW], by_name[SEAWEEDFS])
    # Only the containers resolve http://seaweedfs:8333: nginx withholds presigned transfers.
    (conf,) = [u["content"] for u in by_name[NGINX].plain["uploads"] if u["file"] == "/etc/nginx/nginx.conf"]
    assert "'\"multipart_downloads_enabled\":false'" in conf


def test_an_explicit_image_replaces_the_pin():
    config = stack_config("dev")
    config["mlflow-platform:artifactStore"] = json.dumps(
        {"engine": "seaweedfs", "image": "chrislusf/seaweedfs:4.44_large_disk"}
    )
    run = run_program(config, stack="dev")
    pulled = {r.inputs["name"] for r in run.of_type("docker:index/remoteImage:RemoteImage")}
    assert "chrislusf/seaweedfs:4.44_large_disk" in pulled and SEAWEEDFS_IMAGE not in pulled


def test_the_policy_pack_passes_on_the_seaweedfs_stack():
    from tests.policy.harness import analyze, record

    assert analyze(record(seaweedfs_config(), "dev").resources(raw=True), "dev") == []
