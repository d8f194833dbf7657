"""Garbage collection: the shared command (components/specs/gc.py), its config key, the image
module's URI mapping (images/mlflow/mlflow_gc.py) and `make gc`'s docker exec (tools/dev_gc.py).
The whole thing against real processes: tests/e2e/test_gc.py."""

from __future__ import annotations

import shlex
import sys

import pytest

from components.config import ConfigError, parse_settings
from components.docker.engine import server_container_name
from components.specs.endpoints import private_s3_endpoint
from components.specs.gc import gc_command, gc_env
from components.versions import MLFLOW_IMAGE_DIR
from images.mlflow import server_contract as contract
from tools import dev_gc

sys.path.insert(0, str(MLFLOW_IMAGE_DIR))
import mlflow_gc  # noqa: E402


def test_gc_command_runs_the_image_module_with_the_threshold_and_nothing_secret():
    assert gc_command(None) == ("python", "-m", "mlflow_gc")
    assert gc_command("30d") == ("python", "-m", "mlflow_gc", "--older-than", "30d")
    # Not the boot entrypoint: gc never migrates the schema.
    assert "mlflow_boot" not in gc_command("0s")
    assert (MLFLOW_IMAGE_DIR / "mlflow_gc.py").is_file()
    assert "mlflow_gc.py" in (MLFLOW_IMAGE_DIR / "Dockerfile").read_text()


def test_gc_env_names_the_servers_artifacts_destination():
    artifacts = private_s3_endpoint("mlflow", "us-east-1", "minio", 9000)
    assert gc_env(artifacts) == {contract.ARTIFACTS_DESTINATION: "s3://mlflow/"}
    # The same root the server serves proxied artifacts from (its --artifacts-destination).
    assert artifacts.root == "s3://mlflow/"


@pytest.mark.parametrize("age", ["30d", "12h", "1d12h", "0s", "1.5d", "2d8h5m20s", "90m"])
def test_gc_older_than_accepts_mlflows_form(age):
    settings = parse_settings({"target": "docker", "gc": {"olderThan": age}})
    assert settings.gc.older_than == age


@pytest.mark.parametrize("age", ["", "30", "1w", "12h1d", "1.2.3d", "-1d", "30 d"])
def test_gc_older_than_refuses_anything_else_naming_the_key(age):
    # MLflow's own regex takes "" (as 0: everything) and "1.2.3d" (then float() fails mid-run).
    with pytest.raises(ConfigError) as error:
        parse_settings({"target": "docker", "gc": {"olderThan": age}})
    assert "gc.olderThan" in str(error.value)


def test_gc_is_off_by_default_and_on_both_targets():
    assert parse_settings({"target": "docker"}).gc.older_than is None
    with pytest.raises(ConfigError) as error:
        parse_settings({"target": "docker", "gc": {"olderThen": "1d"}})
    assert "gc.olderThen" in str(error.value)


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("mlflow-artifacts:/1/abc/artifacts", "s3://mlflow/1/abc/artifacts"),
        ("mlflow-artifacts:///1/models/m-1/artifacts", "s3://mlflow/1/models/m-1/artifacts"),
        ("mlflow-artifacts://mlflow:5000/2", "s3://mlflow/2"),
    ],
)
def test_proxied_uris_map_under_the_destination_as_the_server_maps_them(uri, expected):
    assert mlflow_gc.destination_uri(uri, "s3://mlflow/") == expected
    assert mlflow_gc.destination_uri(uri, "s3://mlflow") == expected


@pytest.mark.parametrize("uri", ["mlflow-artifacts:/1/../2", "mlflow-artifacts:/./1", "s3://other/1"])
def test_proxied_uri_mapping_refuses_escapes_and_other_schemes(uri):
    with pytest.raises(ValueError):
        mlflow_gc.destination_uri(uri, "s3://mlflow/")


def test_prepare_drops_the_owner_password_and_keeps_gc_off_http(tmp_path):
    (tmp_path / "db").write_text("server-secret\n")
    (tmp_path / "owner").write_text("owner-secret\n")
    environ = {
        contract.DB_HOST: "postgres",
        contract.DB_NAME: "mlflow",
        contract.DB_USER: contract.SERVER_DB_ROLE,
        contract.DB_OWNER_USER: "mlflow",
        f"{contract.DB_PASSWORD}_FILE": str(tmp_path / "db"),
        f"{contract.DB_OWNER_PASSWORD}_FILE": str(tmp_path / "owner"),
        contract.ARTIFACTS_DESTINATION: "s3://mlflow/",
    }
    assert mlflow_gc.prepare(environ) == "s3://mlflow/"
    assert not any("owner-secret" in value for value in environ.values())
    assert contract.DB_OWNER_PASSWORD not in environ
    # The servers' own role (DML), and a tracking URI that is the store, not an HTTP server.
    assert environ["MLFLOW_TRACKING_URI"] == environ["MLFLOW_BACKEND_STORE_URI"]
    assert environ["MLFLOW_BACKEND_STORE_URI"].startswith(f"postgresql+psycopg2://{contract.SERVER_DB_ROLE}:")


def test_prepare_refuses_without_a_destination():
    with pytest.raises(mlflow_gc.BootError, match=contract.ARTIFACTS_DESTINATION):
        mlflow_gc.prepare({contract.DB_HOST: "postgres"})


def test_make_gc_execs_the_command_in_the_stacks_first_server_container(tmp_path):
    (tmp_path / "Pulumi.dev.yaml").write_text(
        "config:\n"
        "  mlflow-platform:target: docker\n"
        "  mlflow-platform:artifactStore:\n    bucket: team-bucket\n"
        "  mlflow-platform:gc:\n    olderThan: 30d\n"
    )
    settings = dev_gc.stack_settings("dev", tmp_path)
    argv = dev_gc.gc_exec_argv(settings, "dev", "unix:///var/run/docker.sock", settings.gc.older_than)
    assert argv == [
        "docker", "--host=unix:///var/run/docker.sock", "exec",
        f"--env={contract.ARTIFACTS_DESTINATION}=s3://team-bucket/",
        "mlflow-dev-mlflow-0", "python", "-m", "mlflow_gc", "--older-than", "30d",
    ]  # fmt: skip
    assert server_container_name("dev") == "mlflow-dev-mlflow-0"


def test_make_gc_refuses_a_bad_stack_config_naming_the_key(tmp_path):
    (tmp_path / "Pulumi.dev.yaml").write_text(
        "config:\n  mlflow-platform:target: docker\n  mlflow-platform:gc:\n    olderThan: soon\n"
    )
    with pytest.raises(ConfigError, match="gc.olderThan"):
        dev_gc.stack_settings("dev", tmp_path)


def test_make_gc_refuses_an_aws_stack(tmp_path):
    with pytest.raises(ConfigError, match="docker stack"):
        dev_gc.stack_settings("prod", dev_gc.PROJECT_DIR)


def test_make_gc_dry_run_prints_one_shell_line(capsys, monkeypatch):
    monkeypatch.setattr(dev_gc, "resolve_docker_host", lambda configured: ("unix:///x.sock", "config"))
    assert dev_gc.main(["--stack", "dev", "--older-than", "0s", "--dry-run"]) == 0
    line = capsys.readouterr().out.strip()
    assert shlex.split(line)[-5:] == ["python", "-m", "mlflow_gc", "--older-than", "0s"]
