"""The whole program under Pulumi mocks for Pulumi.dev.yaml as committed.

Asserts on the recorded inputs of every resource: pinned images, one published port,
secrets kept secret, health checks, start order, volumes kept.
"""

from __future__ import annotations

import json

import pytest

from components.specs.mlflow_server import mlflow_server_spec
from components.config import parse_settings
from pulumi_mocks import is_secret, reveal, run_program, secret_paths, stack_config

CONTAINER = "docker:index/container:Container"
# Uploaded files that hold no secret (config text, a script); every other upload must be 0400.
NOT_SECRET_FILES = {"/etc/nginx/nginx.conf", "/usr/local/bin/mlflow-platform-postgres"}


@pytest.fixture(scope="module")
def dev():
    return run_program(stack_config("dev"), stack="dev")


def containers(run) -> dict[str, object]:
    return {r.name: r for r in run.of_type(CONTAINER)}


def test_the_dev_stack_registers_the_four_services(dev):
    assert set(containers(dev)) == {"postgres", "minio", "mlflow-0", "nginx"}
    tokens = {r.typ for r in dev.resources if not r.custom}
    assert {"mlflow-platform:docker:Platform", "mlflow-platform:docker:MetadataStore",
            "mlflow-platform:docker:ArtifactStore", "mlflow-platform:docker:TrackingServer",
            "mlflow-platform:docker:Proxy", "mlflow-platform:docker:Network"} <= tokens


def test_disable_default_providers_and_explicit_providers_everywhere(dev):
    assert json.loads(stack_config("dev")["pulumi:disable-default-providers"]) == ["*"]
    for resource in dev.custom:
        if resource.typ.startswith("pulumi:providers:"):
            continue
        assert resource.provider and "::default" not in resource.provider, resource.name
    docker_provider = dev.one("pulumi:providers:docker")
    # Whatever this machine's docker context says (tests/mocks/test_docker_engine.py fakes each case).
    from components.docker.engine import resolve_docker_host
    assert docker_provider.inputs["host"] == resolve_docker_host(None)[0]


def test_every_image_is_pinned(dev):
    for image in dev.of_type("docker:index/remoteImage:RemoteImage"):
        name = image.inputs["name"]
        assert ":" in name.rsplit("/", 1)[-1] and not name.endswith(":latest"), name
        assert image.inputs["keepLocally"] is True
    built = dev.one("docker:index/image:Image")
    assert built.inputs["imageName"].startswith("mlflow-platform/mlflow:3.17.2-")
    assert built.inputs["skipPush"] is True
    assert built.inputs["build"]["context"] == "images/mlflow"
    assert built.inputs["build"]["dockerfile"] == "images/mlflow/Dockerfile"


def test_only_the_proxy_publishes_a_port_on_loopback(dev):
    published = {name: c.inputs.get("ports") for name, c in containers(dev).items() if c.inputs.get("ports")}
    assert list(published) == ["nginx"]
    (port,) = published["nginx"]
    assert port == {"internal": 8080, "external": 8080, "ip": "127.0.0.1", "protocol": "tcp"}


def test_data_services_live_on_an_internal_network(dev):
    backend = dev.one("docker:index/network:Network", "backend")
    frontend = dev.one("docker:index/network:Network", "frontend")
    assert backend.inputs["internal"] is True
    assert "internal" not in frontend.inputs or frontend.inputs["internal"] is False
    networks = {name: [n["name"] for n in c.inputs["networksAdvanced"]] for name, c in containers(dev).items()}
    assert networks["postgres"] == [backend.inputs["name"]]
    assert networks["minio"] == [backend.inputs["name"]]
    assert networks["nginx"] == [frontend.inputs["name"]]
    assert set(networks["mlflow-0"]) == {backend.inputs["name"], frontend.inputs["name"]}


def test_generated_secrets_stay_secret_and_never_reach_plain_env_or_commands(dev):
    generated = [reveal(r.inputs) for r in dev.of_type("random:index/randomPassword:RandomPassword")]
    assert len(generated) == 4  # postgres, minio key + secret, proxy
    passwords = []
    from pulumi_mocks import fake_secret_text
    for resource in dev.of_type("random:index/randomPassword:RandomPassword"):
        passwords.append(fake_secret_text(resource.name, int(resource.inputs["length"])))
    for name, container in containers(dev).items():
        plain_parts = json.dumps([container.inputs.get("envs"), container.inputs.get("command"),
                                  container.inputs.get("entrypoints"), container.inputs.get("healthcheck")])
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
    assert dev.outputs["password"][1] is True
    assert dev.outputs["clientEnv"][1] is True
    assert dev.outputs["trackingUri"] == ("http://localhost:8080", False)


def test_client_env_is_the_three_variables_a_plain_client_sets(dev):
    env, secret = dev.outputs["clientEnv"]
    assert secret
    lines = dict(line.removeprefix("export ").split("=", 1) for line in env.strip().splitlines())
    assert set(lines) == {"MLFLOW_TRACKING_URI", "MLFLOW_TRACKING_USERNAME", "MLFLOW_TRACKING_PASSWORD"}
    assert lines["MLFLOW_TRACKING_URI"] == "'http://localhost:8080'"
    assert lines["MLFLOW_TRACKING_USERNAME"] == "'mlflow'"


def test_the_proxy_withholds_presigned_transfers_clients_cannot_reach_and_resolves_upstreams(dev):
    """MinIO (http://minio:9000) is reachable from the containers only: nginx answers MLflow's
    capability probe with no direct transfers; upstream names go through Docker's DNS."""
    nginx = containers(dev)["nginx"].plain
    (conf,) = [u["content"] for u in nginx["uploads"] if u["file"] == "/etc/nginx/nginx.conf"]
    assert "sub_filter '\"multipart_uploads_enabled\":true' '\"multipart_uploads_enabled\":false';" in conf
    assert "sub_filter '\"multipart_downloads_enabled\":true' '\"multipart_downloads_enabled\":false';" in conf
    assert "resolver 127.0.0.11 valid=5s ipv6=off;" in conf
    assert "server mlflow-0:5000 resolve;" in conf and "zone mlflow_upstreams" in conf


def test_password_env_vars_point_to_files(dev):
    envs = {name: dict(e.split("=", 1) for e in c.inputs.get("envs", [])) for name, c in containers(dev).items()}
    assert envs["postgres"]["POSTGRES_PASSWORD_FILE"].startswith("/run/secrets/")
    assert "POSTGRES_PASSWORD" not in envs["postgres"]
    assert "MINIO_ROOT_PASSWORD" not in envs["minio"]
    for secret in ("MLFLOW_DB_PASSWORD", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        assert secret not in envs["mlflow-0"]
        path = envs["mlflow-0"][f"{secret}_FILE"]
        assert path in [u["file"] for u in reveal(containers(dev)["mlflow-0"].inputs["uploads"])]


def test_every_container_has_a_health_check_waits_for_it_and_restarts(dev):
    for name, container in containers(dev).items():
        health = container.inputs["healthcheck"]
        assert health["tests"][0] in ("CMD", "CMD-SHELL") and len(health["tests"]) > 1, name
        assert container.inputs["wait"] is True, name
        assert container.inputs["restart"] == "unless-stopped", name
        assert "no-new-privileges:true" in container.inputs["securityOpts"], name


def test_start_order_follows_health(dev):
    by_name = containers(dev)
    assert dev.depends_on(by_name["mlflow-0"], by_name["postgres"])
    assert dev.depends_on(by_name["mlflow-0"], by_name["minio"])
    assert dev.depends_on(by_name["nginx"], by_name["mlflow-0"])


def test_data_volumes_are_named_and_kept_on_destroy(dev):
    volumes = dev.of_type("docker:index/volume:Volume")
    assert sorted(v.inputs["name"] for v in volumes) == ["mlflow-dev-minio-data", "mlflow-dev-postgres-data"]
    assert all(v.retain_on_delete for v in volumes)
    mounts = {name: c.inputs.get("volumes") for name, c in containers(dev).items() if c.inputs.get("volumes")}
    assert mounts["postgres"] == [{"volumeName": "mlflow-dev-postgres-data", "containerPath": "/var/lib/postgresql/data"}]
    assert mounts["minio"] == [{"volumeName": "mlflow-dev-minio-data", "containerPath": "/data"}]


def test_volumes_are_deleted_when_the_stack_says_so():
    config = stack_config("dev")
    config["mlflow-platform:docker"] = json.dumps({"keepDataOnDestroy": False})
    run = run_program(config, stack="dev")
    assert not any(v.retain_on_delete for v in run.of_type("docker:index/volume:Volume"))


def test_mlflow_container_runs_exactly_the_spec(dev):
    settings = parse_settings({k.split(":", 1)[1]: json.loads(v) if v.startswith(("{", "[")) else v
                               for k, v in stack_config("dev").items() if k.startswith("mlflow-platform:")})
    mlflow = containers(dev)["mlflow-0"].inputs
    assert mlflow["entrypoints"] + mlflow["command"] == list(
        mlflow_server_spec(settings.tracking, _dev_db(), _dev_minio()).argv)
    assert mlflow["user"] == "10001:10001"
    assert mlflow["capabilities"] == {"drops": ["ALL"]}


def _dev_db():
    from components.specs.endpoints import DatabaseEndpoint
    return DatabaseEndpoint(host="postgres", port=5432, name="mlflow", user="mlflow")


def _dev_minio():
    from components.specs.endpoints import ArtifactEndpoint
    return ArtifactEndpoint(bucket="mlflow", s3_endpoint_url="http://minio:9000", static_credentials=True,
                            create_bucket=True)


def test_nginx_gets_the_rendered_config_and_a_sha512_htpasswd(dev):
    uploads = {u["file"]: u for u in reveal(containers(dev)["nginx"].inputs["uploads"])}
    conf = uploads["/etc/nginx/nginx.conf"]["content"]
    assert "client_max_body_size 10g;" in conf and "server mlflow-0:5000 resolve;" in conf
    htpasswd = uploads["/etc/nginx/mlflow/htpasswd"]
    assert htpasswd["content"].startswith("mlflow:$6$")
    assert htpasswd["owner"] == "101"


def test_tls_adds_a_generated_certificate_and_https_uri():
    config = stack_config("dev")
    config["mlflow-platform:proxy"] = json.dumps({"tls": True, "port": 8443})
    run = run_program(config, stack="dev")
    key = run.one("tls:index/privateKey:PrivateKey")
    assert key.inputs["algorithm"] == "ECDSA"
    cert = run.one("tls:index/selfSignedCert:SelfSignedCert")
    assert cert.inputs["dnsNames"] == ["localhost"]
    assert "privateKeyPem" in secret_paths(cert.inputs)
    nginx = run.one(CONTAINER, "nginx")
    files = {u["file"]: u for u in reveal(nginx.inputs["uploads"])}
    assert files["/etc/nginx/mlflow/tls.key"]["permissions"] == "0400"
    assert nginx.inputs["ports"][0]["internal"] == 8443
    assert run.outputs["trackingUri"][0] == "https://localhost:8443"
    assert run.outputs["tlsCertificate"][0].startswith("-----BEGIN CERTIFICATE-----")


def test_replicas_share_one_database_behind_one_proxy():
    config = stack_config("dev")
    config["mlflow-platform:tracking"] = json.dumps({"replicas": 3})
    run = run_program(config, stack="dev")
    servers = [r for r in run.of_type(CONTAINER) if r.name.startswith("mlflow-")]
    assert len(servers) == 3
    conf = next(u for u in reveal(run.one(CONTAINER, "nginx").inputs["uploads"]) if u["file"].endswith("nginx.conf"))
    assert all(f"server mlflow-{i}:5000 resolve;" in conf["content"] for i in range(3))
    # Every worker of every replica may hold 41 connections (no pool exhaustion under log_batch).
    assert run.one(CONTAINER, "postgres").inputs["command"] == ["postgres", "-c", "max_connections=256"]


def test_a_bad_config_registers_nothing():
    from components.config import ConfigError
    config = stack_config("dev")
    config["mlflow-platform:proxy"] = json.dumps({"port": 99999, "tls": "sometimes"})
    run = run_program(config, stack="dev", raise_errors=False)
    assert isinstance(run.error, ConfigError)
    assert [path for path, _ in run.error.problems] == ["proxy.port", "proxy.tls"]
    assert run.resources == []


def test_named_containers_are_replaced_delete_first(dev):
    # Fixed names and a fixed published port: create-before-delete would collide.
    for name, container in containers(dev).items():
        assert container.delete_before_replace, name


def test_nginx_is_replaced_with_the_mlflow_containers(dev):
    by_name = containers(dev)
    assert by_name["nginx"].replace_with == [by_name["mlflow-0"].urn]


def test_postgres_runs_the_password_sync_wrapper(dev):
    from components.specs.postgres import ENTRYPOINT_PATH, ENTRYPOINT_SCRIPT
    postgres = containers(dev)["postgres"].inputs
    assert postgres["entrypoints"] == [ENTRYPOINT_PATH]
    # 2 workers x 1 server x 41 connections + 10 is below PostgreSQL's usual 100.
    assert postgres["command"] == ["postgres", "-c", "max_connections=100"]
    (wrapper,) = [u for u in reveal(postgres["uploads"]) if u["file"] == ENTRYPOINT_PATH]
    assert wrapper["content"] == ENTRYPOINT_SCRIPT and wrapper["permissions"] == "0755"


HEALTH_DURATIONS = ("interval", "timeout", "startPeriod", "startInterval")


@pytest.mark.parametrize("config", ["committed", "tls"])
def test_health_check_durations_are_written_as_the_provider_reads_them_back(config):
    from unit.test_durations import is_go_canonical

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
    assert checked == 4 * len(HEALTH_DURATIONS)
    # The MLflow server's 120 s start period: the case that showed a diff on every preview.
    assert containers(run)["mlflow-0"].plain["healthcheck"]["startPeriod"] == "2m0s"
