"""observability.enabled on the dev stack (components/docker/observability.py): postgres_exporter,
the proxy's mtail, Prometheus and Grafana, from Pulumi.dev.yaml with observability switched on.

Off (the committed config) registers none of it. On, every input of the three containers is
asserted; the scrape targets are the addresses the stack's own containers answer on (one source of
truth: the topology); only Grafana publishes, on loopback; every file is uploaded content, and as
pulumi-docker marks `upload` ForceNew, the uploads must not change between runs (or every `up`
replaces the container) while a real change replaces only the container, never its kept volume.
"""

from __future__ import annotations

import json

import pytest

from components.image import MTAIL_BUILD_ARGS, mtail_image_tag
from components.specs import grafana as grafana_spec
from components.specs import minio as minio_spec
from components.specs import prometheus as prom_spec
from components.specs import proxy_metrics
from components.specs.prometheus import ScrapeTargets, render_scrape_config
from components.versions import (
    GRAFANA_IMAGE,
    MTAIL_BASE_IMAGE,
    MTAIL_DEBIAN_VERSION,
    POSTGRES_EXPORTER_IMAGE,
    PROMETHEUS_IMAGE,
    REPO_ROOT,
)
from images.mlflow import server_contract as contract
from tests.mocks.docker_finders import MLFLOW, NGINX, PASSWORD, VOLUME, containers, generated_value
from tests.pulumi_mocks import is_secret, reveal, run_program, secret_paths, stack_config
from tests.unit.test_durations import is_go_canonical

PROMETHEUS = "prometheus-prometheus"
GRAFANA = "grafana-grafana"
EXPORTER = "postgres-exporter-postgres-exporter"
MTAIL = "proxy-metrics-mtail"
NEW_COMPONENTS = {
    "mlflow-platform:docker:ProxyMetrics",
    "mlflow-platform:docker:Prometheus",
    "mlflow-platform:docker:Grafana",
    "mlflow-platform:docker:PostgresExporter",
}
NETWORK = "docker:index/network:Network"


def observed_config(**observability) -> dict[str, str]:
    config = stack_config("dev")
    config["mlflow-platform:observability"] = json.dumps({"enabled": True, **observability})
    return config


@pytest.fixture(scope="module")
def observed():
    return run_program(observed_config(), stack="dev")


def uploads_of(container) -> dict[str, dict]:
    return {u["file"]: u for u in reveal(container.inputs["uploads"])}


def env_of(container) -> dict[str, str]:
    return dict(entry.split("=", 1) for entry in container.plain["envs"])


def flag(command: list[str], name: str) -> str:
    """The value of `--name value` or `--name=value` in an argv."""
    for index, part in enumerate(command):
        if part == name:
            return command[index + 1]
        if part.startswith(f"{name}="):
            return part.split("=", 1)[1]
    raise AssertionError(f"{name} not in {command}")


def backend_alias(run, container) -> str:
    backend = next(n for n in run.of_type(NETWORK) if n.inputs.get("internal"))
    (network,) = [n for n in container.plain["networksAdvanced"] if n["name"] == backend.inputs["name"]]
    (alias,) = network["aliases"]
    return alias


def test_off_by_default_the_stack_is_the_five_services(dev_run):
    assert not json.loads(stack_config("dev").get("mlflow-platform:observability", "{}")).get("enabled")
    assert set(containers(dev_run)) == {
        "metadata-store-postgres",
        "artifact-store-minio",
        MLFLOW,
        NGINX,
        "job-queue-redis",
    }
    assert not NEW_COMPONENTS & {r.typ for r in dev_run.resources}
    assert not [r for r in dev_run.of_type(PASSWORD) if "monitor" in r.name or "grafana" in r.name]
    env = env_of(containers(dev_run)[MLFLOW])
    assert contract.DB_MONITOR_USER not in env and f"{contract.DB_MONITOR_PASSWORD}_FILE" not in env
    assert not {"grafanaUrl", "grafanaPassword"} & set(dev_run.outputs)


def test_on_it_adds_the_four_components_and_their_containers(observed):
    assert NEW_COMPONENTS <= {r.typ for r in observed.resources}
    assert set(containers(observed)) == {
        "metadata-store-postgres", "artifact-store-minio", MLFLOW, NGINX, PROMETHEUS, GRAFANA, EXPORTER,
        MTAIL, "job-queue-redis",
    }  # fmt: skip
    images = {r.name: r.inputs["name"] for r in observed.of_type("docker:index/remoteImage:RemoteImage")}
    assert images["prometheus-image"] == PROMETHEUS_IMAGE == "quay.io/prometheus/prometheus:v2.42.0"
    assert images["grafana-image"] == GRAFANA_IMAGE == "grafana/grafana:12.4.3"
    assert images["postgres-exporter-image"] == POSTGRES_EXPORTER_IMAGE


def image_id(run, name: str) -> str:
    return run.exactly("docker:index/remoteImage:RemoteImage", name).inputs["name"]


def health(tests: list[str], *, start_period: str) -> dict:
    """A health check as the provider reads it back: Go durations, polled every 2 s while starting."""
    return {"tests": tests, "interval": "10s", "timeout": "5s", "startPeriod": start_period, "startInterval": "2s",
            "retries": 6}  # fmt: skip


COMMON = {
    "wait": True,
    "waitTimeout": 120,
    "restart": "unless-stopped",
    "securityOpts": ["no-new-privileges:true"],
    "logOpts": {"max-size": "20m", "max-file": "5"},
}


def test_every_input_of_the_exporter(observed):
    exporter = containers(observed)[EXPORTER]
    inputs = dict(exporter.plain)
    uploads = inputs.pop("uploads")
    assert inputs.pop("image").startswith("sha256:")
    assert inputs == {
        **COMMON,
        "name": "mlflow-dev-postgres-exporter",
        "command": ["--web.listen-address=:9187"],
        "envs": [
            "DATA_SOURCE_PASS_FILE=/run/secrets/postgres_exporter_password",
            # The database's alias and port on the backend network, as MLflow reaches it.
            "DATA_SOURCE_URI=postgres:5432/mlflow?sslmode=disable",
            f"DATA_SOURCE_USER={contract.MONITOR_DB_ROLE}",
        ],
        "networksAdvanced": [{"name": "mlflow-dev-backend", "aliases": ["postgres-exporter"]}],
        "healthcheck": health(["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:9187/"], start_period="30s"),
    }  # fmt: skip
    assert is_secret(exporter.inputs["uploads"]) or secret_paths(exporter.inputs["uploads"])
    password = generated_value(observed.exactly(PASSWORD, "metadata-store-monitor-password"))
    assert uploads == [
        {"file": "/run/secrets/postgres_exporter_password", "content": password,
         "owner": "65534", "group": "65534", "permissions": "0400"},
    ]  # fmt: skip
    assert exporter.delete_before_replace


def test_the_exporter_role_is_made_by_the_servers_boot_step_with_the_same_password(observed):
    """The boot step (mlflow_boot.prepare) creates MONITOR_DB_ROLE as the owner; the exporter
    starts after the servers (so after the role exists) and holds the same generated password."""
    server = containers(observed)[MLFLOW]
    env = env_of(server)
    assert env[contract.DB_MONITOR_USER] == contract.MONITOR_DB_ROLE
    path = env[f"{contract.DB_MONITOR_PASSWORD}_FILE"]
    mine = uploads_of(server)[path]
    theirs = uploads_of(containers(observed)[EXPORTER])["/run/secrets/postgres_exporter_password"]
    assert mine["content"] == theirs["content"] and mine["permissions"] == "0400"
    assert observed.depends_on(containers(observed)[EXPORTER], server)
    generated = observed.exactly(PASSWORD, "metadata-store-monitor-password")
    assert generated.inputs["length"] == contract.GENERATED_SECRET_LENGTHS[contract.DB_MONITOR_PASSWORD]
    assert generated.inputs["special"] is False


def test_every_input_of_prometheus(observed):
    prom = containers(observed)[PROMETHEUS]
    inputs = dict(prom.plain)
    inputs.pop("uploads")
    assert inputs.pop("image").startswith("sha256:")
    assert inputs == {
        **COMMON,
        "name": "mlflow-dev-prometheus",
        "envs": [],
        "command": [
            "--config.file=/etc/prometheus/prometheus.yml",
            "--storage.tsdb.path=/prometheus",
            "--storage.tsdb.retention.time=15d",
            "--web.listen-address=:9090",
        ],
        "volumes": [{"volumeName": "mlflow-dev-prometheus-data", "containerPath": "/prometheus"}],
        "networksAdvanced": [{"name": "mlflow-dev-backend", "aliases": ["prometheus"]}],
        "healthcheck": health(
            ["CMD", "wget", "-q", "-O", "/dev/null", "http://127.0.0.1:9090/-/ready"], start_period="1m0s"
        ),
    }  # fmt: skip
    assert observed.depends_on(prom, containers(observed)[EXPORTER])
    assert prom.delete_before_replace


def test_prometheus_gets_the_e2e_s_render_and_the_repo_s_rules(observed):
    uploads = uploads_of(containers(observed)[PROMETHEUS])
    assert set(uploads) == {"/etc/prometheus/prometheus.yml", "/etc/prometheus/rules/alerts.yml"}
    assert uploads["/etc/prometheus/rules/alerts.yml"]["content"] == prom_spec.ALERT_RULES.read_text()
    config = uploads["/etc/prometheus/prometheus.yml"]["content"]
    # The same function the e2e renders with (tests/e2e/test_prometheus.py), given this topology.
    targets = ScrapeTargets(
        mlflow=["mlflow-0:5000"],
        postgres_exporter=["postgres-exporter:9187"],
        prometheus=["prometheus:9090"],
        proxy=["proxy-metrics:3903"],
        object_store=["minio:9000"],
        object_store_path="/minio/v2/metrics/bucket",
    )
    assert config == render_scrape_config(targets, rule_files=["/etc/prometheus/rules/alerts.yml"])


@pytest.mark.parametrize("replicas", [1, 3])
def test_scrape_targets_are_the_containers_the_stack_creates(replicas, observed):
    """Each target is a container's alias on the backend network and the port it listens on, and
    MLflow accepts each server's target as a Host header (or it would answer the scraper 403)."""
    run = observed
    if replicas != 1:
        config = observed_config()
        config["mlflow-platform:tracking"] = json.dumps({"replicas": replicas})
        run = run_program(config, stack="dev")
    by_name = containers(run)
    config = json.loads(uploads_of(by_name[PROMETHEUS])["/etc/prometheus/prometheus.yml"]["content"])
    jobs = {job["job_name"]: job["static_configs"][0]["targets"] for job in config["scrape_configs"]}
    servers = [by_name[f"tracking-server-mlflow-{i}"] for i in range(replicas)]
    assert jobs[prom_spec.MLFLOW_JOB] == [
        f"{backend_alias(run, server)}:{flag(server.plain['command'], '--port')}" for server in servers
    ]
    for server in servers:
        allowed = flag(server.plain["command"], "--allowed-hosts").split(",")
        assert set(jobs[prom_spec.MLFLOW_JOB]) <= set(allowed)
    for job, name in ((prom_spec.POSTGRES_JOB, EXPORTER), (prom_spec.PROMETHEUS_JOB, PROMETHEUS)):
        container = by_name[name]
        port = flag(container.plain["command"], "--web.listen-address").rsplit(":", 1)[1]
        assert jobs[job] == [f"{backend_alias(run, container)}:{port}"], job
    # mtail: its alias on the backend network and its --port; MinIO: its S3 port and bucket path.
    mtail = by_name[MTAIL]
    assert jobs[prom_spec.PROXY_JOB] == [f"{backend_alias(run, mtail)}:{flag(mtail.plain['entrypoints'], '--port')}"]
    minio = by_name["artifact-store-minio"]
    minio_port = flag(minio.plain["command"], "--address").rsplit(":", 1)[1]
    assert jobs[prom_spec.OBJECT_STORE_JOB] == [f"{backend_alias(run, minio)}:{minio_port}"]
    paths = {job["job_name"]: job["metrics_path"] for job in config["scrape_configs"]}
    assert paths[prom_spec.OBJECT_STORE_JOB] == minio_spec.METRICS_PATH
    # Grafana's data source is that Prometheus, by the same alias and port.
    datasource = uploads_of(by_name[GRAFANA])["/etc/grafana/provisioning/datasources/prometheus.yml"]["content"]
    assert f"url: http://{jobs[prom_spec.PROMETHEUS_JOB][0]}\n" in datasource


def test_only_nginx_and_grafana_publish_and_both_on_loopback(observed):
    published = {name: c.plain["ports"] for name, c in containers(observed).items() if c.inputs.get("ports")}
    assert set(published) == {NGINX, GRAFANA}
    assert published[GRAFANA] == [{"internal": 3000, "external": 3000, "ip": "127.0.0.1", "protocol": "tcp"}]
    # Prometheus and the exporter sit on the internal network only; mtail also on nginx's.
    internal = {n.inputs["name"] for n in observed.of_type(NETWORK) if n.inputs.get("internal")}
    assert {n["name"] for n in containers(observed)[MTAIL].plain["networksAdvanced"]} == {
        "mlflow-dev-backend",
        "mlflow-dev-frontend",
    }
    assert internal >= {"mlflow-dev-backend"}
    for name in (PROMETHEUS, EXPORTER):
        assert {n["name"] for n in containers(observed)[name].plain["networksAdvanced"]} == internal, name


def test_grafana_port_follows_the_config_and_may_not_take_the_proxy_s():
    run = run_program(observed_config(grafanaPort=3300), stack="dev")
    grafana = containers(run)[GRAFANA]
    assert grafana.plain["ports"] == [{"internal": 3000, "external": 3300, "ip": "127.0.0.1", "protocol": "tcp"}]
    assert env_of(grafana)["GF_SERVER_ROOT_URL"] == "http://localhost:3300/"
    assert run.outputs["grafanaUrl"] == ("http://localhost:3300", False)


def test_every_input_of_grafana(observed):
    grafana = containers(observed)[GRAFANA]
    inputs = dict(grafana.plain)
    inputs.pop("uploads")
    assert inputs.pop("image").startswith("sha256:")
    network = observed.exactly(NETWORK, "grafana-grafana")
    assert network.inputs == {
        "name": "mlflow-dev-grafana",
        "driver": "bridge",
        "labels": [{"label": "mlflow-platform.role", "value": "grafana"}],
    }
    assert inputs == {
        **COMMON,
        "name": "mlflow-dev-grafana",
        "entrypoints": ["/usr/local/bin/mlflow-platform-grafana"],
        "envs": [
            "GF_ANALYTICS_CHECK_FOR_PLUGIN_UPDATES=false",
            "GF_ANALYTICS_CHECK_FOR_UPDATES=false",
            "GF_ANALYTICS_REPORTING_ENABLED=false",
            "GF_AUTH_ANONYMOUS_ENABLED=false",
            "GF_NEWS_NEWS_FEED_ENABLED=false",
            "GF_PLUGINS_PREINSTALL_DISABLED=true",
            "GF_SECURITY_ADMIN_PASSWORD__FILE=/run/secrets/grafana_admin_password",
            "GF_SECURITY_ADMIN_USER=admin",
            "GF_SECURITY_DISABLE_GRAVATAR=true",
            "GF_SERVER_HTTP_PORT=3000",
            "GF_SERVER_ROOT_URL=http://localhost:3000/",
            "GF_USERS_ALLOW_SIGN_UP=false",
        ],
        "ports": [{"internal": 3000, "external": 3000, "ip": "127.0.0.1", "protocol": "tcp"}],
        "volumes": [{"volumeName": "mlflow-dev-grafana-data", "containerPath": "/var/lib/grafana"}],
        "networksAdvanced": [
            {"name": "mlflow-dev-backend", "aliases": ["grafana"]},
            {"name": "mlflow-dev-grafana"},
        ],
        "healthcheck": health(
            ["CMD", "curl", "-fsS", "-o", "/dev/null", "http://127.0.0.1:3000/api/health"], start_period="1m0s"
        ),
    }  # fmt: skip
    assert observed.depends_on(grafana, containers(observed)[PROMETHEUS])
    assert grafana.delete_before_replace


def test_grafana_is_provisioned_from_the_repo_s_files_as_uploaded_content(observed):
    uploads = uploads_of(containers(observed)[GRAFANA])
    repo = REPO_ROOT / "observability" / "grafana"
    expected = {
        "/etc/grafana/provisioning/datasources/prometheus.yml": repo / "provisioning/datasources/prometheus.yml",
        "/etc/grafana/provisioning/dashboards/mlflow.yml": repo / "provisioning/dashboards/mlflow.yml",
        "/etc/grafana/dashboards/mlflow.json": repo / "dashboards/mlflow.json",
    }
    for path, source in expected.items():
        assert uploads[path]["content"] == source.read_text(), path
        assert "permissions" not in uploads[path] and "owner" not in uploads[path]
    # The dashboard provider reads where the dashboards are uploaded (not the data volume).
    provider = uploads["/etc/grafana/provisioning/dashboards/mlflow.yml"]["content"]
    assert f"path: {grafana_spec.DASHBOARDS_DIR}\n" in provider
    assert not grafana_spec.DASHBOARDS_DIR.startswith(grafana_spec.DATA_DIR)
    entrypoint = uploads["/usr/local/bin/mlflow-platform-grafana"]
    assert entrypoint == {"file": "/usr/local/bin/mlflow-platform-grafana", "content": grafana_spec.ENTRYPOINT_SCRIPT,
                          "permissions": "0755"}  # fmt: skip
    assert set(uploads) == {*expected, "/usr/local/bin/mlflow-platform-grafana", "/run/secrets/grafana_admin_password"}


def test_grafana_s_admin_password_is_generated_secret_a_file_and_a_secret_output(observed):
    generated = observed.exactly(PASSWORD, "grafana-password")
    assert generated.inputs["length"] == 32 and generated.inputs["special"] is False
    password = generated_value(generated)
    grafana = containers(observed)[GRAFANA]
    secret_file = uploads_of(grafana)["/run/secrets/grafana_admin_password"]
    assert secret_file == {"file": "/run/secrets/grafana_admin_password", "content": password,
                           "owner": "472", "group": "472", "permissions": "0400"}  # fmt: skip
    assert env_of(grafana)["GF_SECURITY_ADMIN_PASSWORD__FILE"] == secret_file["file"]
    plain = json.dumps(
        [c.plain.get(k) for c in containers(observed).values() for k in ("envs", "command", "entrypoints")]
    )
    assert password not in plain
    # In state, the file's content is a secret; so is the output.
    assert is_secret(grafana.inputs["uploads"]) or secret_paths(grafana.inputs["uploads"])
    assert observed.outputs["grafanaPassword"] == (password, True)
    assert observed.outputs["grafanaUrl"] == ("http://localhost:3000", False)


def test_durations_health_and_kept_volumes_of_the_new_containers(observed):
    for name in (PROMETHEUS, GRAFANA, EXPORTER):
        health = containers(observed)[name].plain["healthcheck"]
        for key in ("interval", "timeout", "startPeriod", "startInterval"):
            assert is_go_canonical(health[key]), (name, key, health[key])
    volumes = {v.inputs["name"]: v for v in observed.of_type(VOLUME)}
    assert set(volumes) == {
        "mlflow-dev-postgres-data", "mlflow-dev-minio-data", "mlflow-dev-prometheus-data", "mlflow-dev-grafana-data",
        "mlflow-dev-redis-data",
    }  # fmt: skip
    assert all(v.retain_on_delete for v in volumes.values())
    assert volumes["mlflow-dev-grafana-data"].inputs["labels"] == [
        {"label": "mlflow-platform.data", "value": "grafana"}
    ]


def test_uploads_are_the_same_every_run_and_a_real_change_replaces_only_the_container(observed):
    """`upload` is ForceNew in the provider: an upload that differed between runs would replace the
    container on every `up`. A real change (another replica to scrape) does replace Prometheus,
    delete-first (fixed name), while its volume's inputs stay the same: the samples are kept."""
    again = run_program(observed_config(), stack="dev")
    for name in (PROMETHEUS, GRAFANA, EXPORTER):
        assert uploads_of(containers(again)[name]) == uploads_of(containers(observed)[name]), name
    config = observed_config()
    config["mlflow-platform:tracking"] = json.dumps({"replicas": 2})
    changed = run_program(config, stack="dev")
    before, after = containers(observed)[PROMETHEUS], containers(changed)[PROMETHEUS]
    assert uploads_of(before) != uploads_of(after)
    assert after.delete_before_replace
    volume = {v.name: v for v in changed.of_type(VOLUME)}["prometheus-data"]
    assert volume.inputs == {v.name: v for v in observed.of_type(VOLUME)}["prometheus-data"].inputs
    assert volume.retain_on_delete


def test_a_bad_observability_config_registers_nothing_and_names_every_key():
    from components.config import ConfigError

    bad = {"enabled": "sometimes", "grafanaPort": 0, "retentionDays": 0, "grafanaImage": "grafana/grafana:latest",
           "alertmanager": True}  # fmt: skip
    config = stack_config("dev")
    config["mlflow-platform:observability"] = json.dumps(bad)
    run = run_program(config, stack="dev", raise_errors=False)
    assert isinstance(run.error, ConfigError)
    assert [path for path, _ in run.error.problems] == [
        "observability.alertmanager",
        "observability.enabled",
        "observability.grafanaImage",
        "observability.grafanaPort",
        "observability.retentionDays",
    ]
    assert run.resources == []
    clash = run_program(observed_config(grafanaPort=8080), stack="dev", raise_errors=False)
    assert isinstance(clash.error, ConfigError)
    assert clash.error.problems == [("observability.grafanaPort", clash.error.problems[0][1])]
    assert "proxy.port" in clash.error.problems[0][1] and clash.resources == []


def test_every_input_of_the_other_new_resources(observed):
    """Images kept on the engine, volumes labelled and kept, passwords alphanumeric; each a child
    of its component, named after it."""
    by_name = {r.name: r for r in observed.resources}
    new = {
        "postgres-exporter-image": {"name": POSTGRES_EXPORTER_IMAGE, "keepLocally": True},
        "prometheus-image": {"name": PROMETHEUS_IMAGE, "keepLocally": True},
        "grafana-image": {"name": GRAFANA_IMAGE, "keepLocally": True},
        "prometheus-data": {
            "name": "mlflow-dev-prometheus-data",
            "labels": [{"label": "mlflow-platform.data", "value": "prometheus"}],
        },
        "grafana-data": {
            "name": "mlflow-dev-grafana-data",
            "labels": [{"label": "mlflow-platform.data", "value": "grafana"}],
        },
        "grafana-password": {"length": 32, "special": False},
        "metadata-store-monitor-password": {"length": 32, "special": False},
    }
    for name, inputs in new.items():
        assert by_name[name].plain == inputs, name
        parent = observed.by_urn(by_name[name].parent)
        assert name.startswith(f"{parent.name}-"), (name, parent.name)
    assert by_name["prometheus-data"].retain_on_delete and by_name["grafana-data"].retain_on_delete


def test_every_input_of_mtail_and_its_image_built_from_the_repo(observed):
    """mtail has no published image: the program builds images/mtail (Debian's package on Debian's
    image, both pins passed as build args) and runs the spec's program, uploaded."""
    mtail = containers(observed)[MTAIL]
    inputs = dict(mtail.plain)
    uploads = inputs.pop("uploads")
    image = observed.exactly("docker:index/image:Image", "proxy-metrics-image")
    assert inputs.pop("image") == image.plain["imageName"] == f"mlflow-platform/mtail:{mtail_image_tag()}"
    assert inputs == {
        **COMMON,
        "name": "mlflow-dev-mtail",
        "entrypoints": ["/usr/bin/mtail", "--progs=/etc/mtail", "--logs=udp://:5140", "--port=3903",
                        "--emit_prog_label=false", "--logtostderr"],
        "envs": [],
        "networksAdvanced": [
            {"name": "mlflow-dev-backend", "aliases": ["proxy-metrics"]},
            {"name": "mlflow-dev-frontend", "aliases": ["proxy-metrics"]},
        ],
        "healthcheck": {**health(["CMD", "bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/3903"], start_period="20s")},
    }  # fmt: skip
    assert uploads == [{"file": "/etc/mtail/proxy.mtail", "content": proxy_metrics.mtail_program()}]
    assert mtail.delete_before_replace
    build = image.plain["build"]
    assert build == {
        "context": "images/mtail",
        "dockerfile": "images/mtail/Dockerfile",
        "args": {"BASE_IMAGE": MTAIL_BASE_IMAGE, "MTAIL_VERSION": MTAIL_DEBIAN_VERSION},
        "builderVersion": "BuilderBuildKit",
        # Built for the engine's platform, as the MLflow image is.
        "platform": observed.exactly("docker:index/image:Image", "tracking-server-image").plain["build"]["platform"],
    }
    assert image.plain["skipPush"] is True and "registry" not in image.plain
    # The Dockerfile takes exactly those args, and pins nothing of its own.
    dockerfile = (REPO_ROOT / "images" / "mtail" / "Dockerfile").read_text()
    assert set(MTAIL_BUILD_ARGS) == {line.split()[1] for line in dockerfile.splitlines() if line.startswith("ARG ")}
    assert "FROM ${BASE_IMAGE}" in dockerfile and '"mtail=${MTAIL_VERSION}"' in dockerfile


def test_a_changed_mtail_pin_is_a_new_image_tag(monkeypatch):
    from components import image as image_module

    before = mtail_image_tag()
    monkeypatch.setitem(image_module.MTAIL_BUILD_ARGS, "MTAIL_VERSION", "3.0.0~rc51-1")
    assert mtail_image_tag() != before


def test_nginx_sends_mtail_its_lines_and_starts_and_is_replaced_with_it(observed, dev_run):
    by_name = containers(observed)
    nginx, mtail = by_name[NGINX], by_name[MTAIL]
    config = uploads_of(nginx)["/etc/nginx/nginx.conf"]["content"]
    assert proxy_metrics.nginx_access_log(f"{backend_alias(observed, mtail)}:{proxy_metrics.SYSLOG_PORT}") in config
    assert proxy_metrics.nginx_log_format() in config
    assert "--logs=udp://:5140" in mtail.plain["entrypoints"]
    # nginx resolves mtail's name when it starts: after mtail, and again whenever mtail is replaced.
    assert observed.depends_on(nginx, mtail)
    assert mtail.urn in nginx.replace_with
    # Off: no line for a collector that does not exist.
    assert "syslog:" not in uploads_of(containers(dev_run)[NGINX])["/etc/nginx/nginx.conf"]["content"]


def test_the_artifact_store_serves_bucket_metrics_only_when_observed(observed, dev_run):
    """MinIO's metrics endpoint is open (no JWT) only on a monitored stack, and only on the internal
    network: the container publishes nothing."""
    observed_minio = containers(observed)["artifact-store-minio"]
    assert env_of(observed_minio)["MINIO_PROMETHEUS_AUTH_TYPE"] == "public"
    assert not observed_minio.inputs.get("ports")
    assert "MINIO_PROMETHEUS_AUTH_TYPE" not in env_of(containers(dev_run)["artifact-store-minio"])


def test_seaweedfs_serves_its_metrics_port_when_observed():
    config = observed_config()
    config["mlflow-platform:artifactStore"] = json.dumps({"engine": "seaweedfs"})
    run = run_program(config, stack="dev")
    weed = containers(run)["artifact-store-seaweedfs"]
    assert "-metricsPort=9327" in weed.plain["command"]
    prometheus = json.loads(uploads_of(containers(run)[PROMETHEUS])["/etc/prometheus/prometheus.yml"]["content"])
    (job,) = [job for job in prometheus["scrape_configs"] if job["job_name"] == prom_spec.OBJECT_STORE_JOB]
    assert job["static_configs"][0]["targets"] == [f"{backend_alias(run, weed)}:9327"]
    assert job["metrics_path"] == "/metrics"
