"""The whole program under Pulumi mocks for Pulumi.dev.yaml: what holds across the Docker stack.

Asserts on the recorded inputs of every resource: explicit providers, pinned images, secrets kept
secret, health checks, volumes kept, and the names each component gives its children. Each
component has its own file (test_docker_<component>.py); the run is conftest.py's `dev_run`.
"""

from __future__ import annotations

import json

import pytest

from tests.mocks.docker_finders import (
    CONTAINER,
    MINIO,
    MLFLOW,
    NGINX,
    PASSWORD,
    POSTGRES,
    REDIS,
    VOLUME,
    containers,
    generated_value,
)
from tests.pulumi_mocks import is_secret, reveal, run_program, secret_paths, stack_config

PLATFORM = "mlflow-platform:docker:Platform"
# Uploaded files that hold no secret (config text, a script); every other upload must be 0400.
NOT_SECRET_FILES = {"/etc/nginx/nginx.conf", "/usr/local/bin/mlflow-platform-postgres"}
# Configs whose stacks have no baseline (tests/mocks/baseline holds the committed one's).
OTHER_CONFIGS = {
    "tls": {"mlflow-platform:proxy": {"tls": True}},
    "seaweedfs": {"mlflow-platform:artifactStore": {"engine": "seaweedfs"}},
    "replicas": {"mlflow-platform:tracking": {"replicas": 2}},
    "observability": {"mlflow-platform:observability": {"enabled": True}},
}


def run_with(config_name: str, dev_run):
    """The committed config's run (the shared one), or the run of one of OTHER_CONFIGS."""
    if config_name == "committed":
        return dev_run
    config = stack_config("dev")
    config.update({key: json.dumps(value) for key, value in OTHER_CONFIGS.get(config_name, {}).items()})
    return run_program(config, stack="dev")


def test_the_dev_stack_registers_the_five_services(dev_run):
    assert set(containers(dev_run)) == {POSTGRES, MINIO, MLFLOW, NGINX, REDIS}
    tokens = {r.typ for r in dev_run.resources if not r.custom}
    assert {
        "mlflow-platform:docker:Platform",
        "mlflow-platform:docker:MetadataStore",
        "mlflow-platform:docker:ArtifactStore",
        "mlflow-platform:docker:TrackingServer",
        "mlflow-platform:docker:Proxy",
        "mlflow-platform:docker:Network",
    } <= tokens


def test_disable_default_providers_and_explicit_providers_everywhere(dev_run):
    assert json.loads(stack_config("dev")["pulumi:disable-default-providers"]) == ["*"]
    for resource in dev_run.custom:
        if resource.typ.startswith("pulumi:providers:"):
            continue
        assert resource.provider and "::default" not in resource.provider, resource.name
    docker_provider = dev_run.one("pulumi:providers:docker")
    # Whatever this machine's docker context says (tests/mocks/test_docker_engine.py fakes each case).
    from components.docker.engine import resolve_docker_host

    assert docker_provider.inputs["host"] == resolve_docker_host(None)[0]


@pytest.mark.parametrize("config_name", ["committed", "tls"])
def test_each_resource_takes_its_package_s_provider_from_the_platform(config_name, dev_run):
    """The components get the providers in their options; their children inherit them (parent=self)."""
    run = run_with(config_name, dev_run)
    platform = run.one(PLATFORM)
    providers = {
        r.typ.removeprefix("pulumi:providers:"): r.urn for r in run.custom if r.typ.startswith("pulumi:providers:")
    }
    assert set(providers) == {"docker", "random", "tls"}
    assert all(run.by_urn(urn).parent == platform.urn for urn in providers.values())
    for resource in run.custom:
        if resource.typ.startswith("pulumi:providers:"):
            continue
        package = resource.typ.split(":", 1)[0]
        assert resource.provider.rsplit("::", 1)[0] == providers[package], resource.name


# Children first created under their prefixed name: no stack ever deployed an older one.
ADDED_AFTER_THE_RENAME = {"server-password", "monitor-password"}
# Components first deployed after the rename: nothing of theirs was ever deployed under an old name.
ADDED_COMPONENTS = {"job-queue", "proxy-metrics"}


@pytest.mark.parametrize("config_name", ["committed", *OTHER_CONFIGS])
def test_children_are_named_after_their_component_and_aliased_from_their_old_names(config_name, dev_run):
    """`password` became `metadata-store-password`: two instances of a component never collide, and
    the alias moves what a stack deployed under the old name (test_no_replacement checks the
    committed config's stack against its baseline; this covers the others too)."""
    run = run_with(config_name, dev_run)
    by_urn = {r.urn: r for r in run.resources}
    platform = run.one(PLATFORM)
    for resource in run.resources:
        parent = by_urn.get(resource.parent)
        # Names aliased from (pulumi_docker adds an alias of its own, of another type: docker.Image's).
        aliased = {urn.rsplit("::", 1)[1] for urn in resource.alias_urns} - {resource.name}
        if parent is None or parent.urn == platform.urn:
            # The platform's own children (providers, components) keep the names they were deployed under.
            assert aliased == set(), resource.urn
            continue
        assert resource.name.startswith(f"{parent.name}-"), resource.urn
        old_name = resource.name.removeprefix(f"{parent.name}-")
        if parent.name in ADDED_COMPONENTS:
            continue
        if old_name in ADDED_AFTER_THE_RENAME:
            assert aliased == set(), resource.urn
            continue
        assert f"{resource.urn.rsplit('::', 1)[0]}::{old_name}" in resource.alias_urns, resource.urn
        assert aliased == {old_name}, resource.urn


def test_every_image_is_pinned(dev_run):
    for image in dev_run.of_type("docker:index/remoteImage:RemoteImage"):
        name = image.inputs["name"]
        assert ":" in name.rsplit("/", 1)[-1] and not name.endswith(":latest"), name
        assert image.inputs["keepLocally"] is True
    built = dev_run.one("docker:index/image:Image")
    assert built.inputs["imageName"].startswith("mlflow-platform/mlflow:3.17.2-")
    assert built.inputs["skipPush"] is True
    assert built.inputs["build"]["context"] == "images/mlflow"
    assert built.inputs["build"]["dockerfile"] == "images/mlflow/Dockerfile"


def test_generated_secrets_stay_secret_and_never_reach_plain_env_or_commands(dev_run):
    generated = dev_run.of_type(PASSWORD)
    # postgres's owner and the servers' role, minio key + secret, proxy, MLflow's KEK passphrase,
    # the job queue's Redis
    assert len(generated) == 7
    passwords = [generated_value(resource) for resource in generated]
    for name, container in containers(dev_run).items():
        plain_parts = json.dumps(
            [
                container.inputs.get("envs"),
                container.inputs.get("command"),
                container.inputs.get("entrypoints"),
                container.inputs.get("healthcheck"),
            ]
        )
        for password in passwords:
            assert password not in plain_parts, f"a generated secret is in {name}'s env or command"
        # Every file carrying a secret is uploaded as a secret, readable by its owner only.
        uploads = container.inputs.get("uploads")
        if uploads is None:
            continue
        assert is_secret(uploads) or secret_paths(uploads), name
        for upload in reveal(uploads):
            if upload["file"] in NOT_SECRET_FILES or upload["file"].endswith(".crt"):
                continue
            assert upload["permissions"] == "0400", upload["file"]
    assert dev_run.outputs["password"][1] is True
    assert dev_run.outputs["clientEnv"][1] is True
    assert dev_run.outputs["trackingUri"] == ("http://localhost:8080", False)


def test_client_env_is_the_three_variables_a_plain_client_sets(dev_run):
    env, secret = dev_run.outputs["clientEnv"]
    assert secret
    lines = dict(line.removeprefix("export ").split("=", 1) for line in env.strip().splitlines())
    assert set(lines) == {"MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"}
    assert lines["MLFLOW_TRACKING_URI"] == "'http://localhost:8080'"
    assert lines["MLFLOW_TRACKING_USERNAME"] == "'mlflow'"


def test_every_container_has_a_health_check_waits_for_it_and_restarts(dev_run):
    for name, container in containers(dev_run).items():
        health = container.inputs["healthcheck"]
        assert health["tests"][0] in ("CMD", "CMD-SHELL") and len(health["tests"]) > 1, name
        assert container.inputs["wait"] is True, name
        assert container.inputs["restart"] == "unless-stopped", name
        assert "no-new-privileges:true" in container.inputs["securityOpts"], name


def test_the_only_volumes_are_the_stores_and_they_are_kept_on_destroy(dev_run):
    volumes = dev_run.of_type(VOLUME)
    assert sorted(v.inputs["name"] for v in volumes) == [
        "mlflow-dev-minio-data", "mlflow-dev-postgres-data", "mlflow-dev-redis-data"
    ]  # fmt: skip
    assert all(v.retain_on_delete for v in volumes)


def test_volumes_are_deleted_when_the_stack_says_so():
    config = stack_config("dev")
    config["mlflow-platform:docker"] = json.dumps({"keepDataOnDestroy": False})
    run = run_program(config, stack="dev")
    assert not any(v.retain_on_delete for v in run.of_type(VOLUME))


def test_replicas_share_one_database_behind_one_proxy():
    config = stack_config("dev")
    config["mlflow-platform:tracking"] = json.dumps({"replicas": 3})
    run = run_program(config, stack="dev")
    servers = [r for r in run.of_type(CONTAINER) if r.name.startswith("tracking-server-mlflow-")]
    assert len(servers) == 3
    conf = next(u for u in reveal(run.one(CONTAINER, "nginx").inputs["uploads"]) if u["file"].endswith("nginx.conf"))
    assert all(f"server mlflow-{i}:5000 max_fails=1 fail_timeout=1s resolve;" in conf["content"] for i in range(3))
    # Every pool (tracking, registry: 42 each) of every worker of every replica, and each
    # server process's idle connection per store: 3 × (2 × 2 × 42 + 2) + 10.
    assert run.one(CONTAINER, "postgres").inputs["command"][:3] == ["postgres", "-c", "max_connections=520"]


def test_a_bad_config_registers_nothing():
    from components.config import ConfigError

    config = stack_config("dev")
    config["mlflow-platform:proxy"] = json.dumps({"port": 99999, "tls": "sometimes"})
    run = run_program(config, stack="dev", raise_errors=False)
    assert isinstance(run.error, ConfigError)
    assert [path for path, _ in run.error.problems] == ["proxy.port", "proxy.tls"]
    assert run.resources == []


def test_named_containers_are_replaced_delete_first(dev_run):
    # Fixed names and a fixed published port: create-before-delete would collide.
    for name, container in containers(dev_run).items():
        assert container.delete_before_replace, name


HEALTH_DURATIONS = ("interval", "timeout", "startPeriod", "startInterval")


@pytest.mark.parametrize("config", ["committed", "tls"])
def test_health_check_durations_are_written_as_the_provider_reads_them_back(config):
    from tests.unit.test_durations import is_go_canonical

    stack = stack_config("dev")
    if config == "tls":
        stack["mlflow-platform:proxy"] = json.dumps({"tls": True})
    run = run_program(stack, stack="dev")
    checked = 0
    for container in run.of_type(CONTAINER):
        health = container.plain["healthcheck"]
        for key in HEALTH_DURATIONS:
            assert is_go_canonical(health[key]), (container.name, key, health[key])
            checked += 1
    assert checked == len(containers(run)) * len(HEALTH_DURATIONS) == 5 * len(HEALTH_DURATIONS)
    # The MLflow server's 120 s start period: the case that showed a diff on every preview.
    assert containers(run)[MLFLOW].plain["healthcheck"]["startPeriod"] == "2m0s"
