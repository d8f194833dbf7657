"""The dev stack with `auth.mode: mlflow` (components/docker/mlflow_auth.py): MLflow's basic-auth
app with the declared users behind an nginx that authenticates nobody itself.

The declaration is a container upload: the provider replaces a container whose upload content
changes (kreuzwerker/terraform-provider-docker, resource_docker_container.go: `upload.content`
ForceNew), so a changed `auth.*` is a new MLflow container, whose boot step applies it."""

from __future__ import annotations

import json

import pytest

from images.mlflow import server_contract as contract
from tests.mocks.docker_finders import MLFLOW, NGINX, PASSWORD, POSTGRES, children, containers, generated_value
from tests.pulumi_mocks import is_secret, reveal, run_program, stack_config

USERS = {"alice": {"roles": ["data-scientist"]}, "gina": {"roles": ["governance"], "experiments": {"*": "EDIT"}}}


def mlflow_mode_config(users: dict = USERS) -> dict[str, str]:
    config = stack_config("dev")
    config["mlflow-platform:auth"] = json.dumps({"mode": "mlflow", "defaultPermission": "READ", "users": users})
    return config


@pytest.fixture(scope="module")
def mlflow_run():
    return run_program(mlflow_mode_config(), stack="dev")


def envs_of(container) -> dict[str, str]:
    return dict(e.split("=", 1) for e in container.inputs["envs"])


def files_of(container) -> dict[str, dict]:
    return {u["file"]: u for u in reveal(container.inputs["uploads"])}


def test_the_auth_component_generates_the_admin_session_and_one_password_per_user(mlflow_run):
    passwords = {r.name: r for r in children(mlflow_run, "mlflow-platform:docker:MlflowAuth")}
    assert set(passwords) == {"auth-admin", "auth-session", "auth-user-alice", "auth-user-gina"}
    lengths = contract.GENERATED_SECRET_LENGTHS
    for name, resource in passwords.items():
        assert resource.typ == PASSWORD
        assert resource.inputs == {
            "length": lengths[contract.FLASK_SECRET_KEY] if name == "auth-session" else 32,
            "special": False,
        }


def test_the_server_runs_basic_auth_with_the_declaration_as_a_secret_file(mlflow_run):
    mlflow = containers(mlflow_run)[MLFLOW]
    command = mlflow.inputs["command"]
    assert command[command.index("--app-name") + 1] == contract.BASIC_AUTH_APP
    envs = envs_of(mlflow)
    assert envs[contract.PROMOTER_ROLES] == "governance"
    assert envs["MLFLOW_BOOT_AUTH_DEFAULT_PERMISSION"] == "READ"
    assert envs["MLFLOW_AUTH_ADMIN_USERNAME"] == "admin"
    # nginx vouches for nobody here: the server trusts no proxy header.
    assert contract.PROXY_USER_HEADER not in envs
    assert contract.AUTH_DECLARATION not in envs
    upload = files_of(mlflow)[envs[f"{contract.AUTH_DECLARATION}_FILE"]]
    assert is_secret(mlflow.inputs["uploads"])  # the engine keeps every upload encrypted in state
    assert (upload["owner"], upload["group"], upload["permissions"]) == ("10001", "10001", "0400")

    generated = {r.name: generated_value(r) for r in mlflow_run.of_type(PASSWORD)}
    declaration = json.loads(upload["content"])
    assert {name: user["password"] for name, user in declaration["users"].items()} == {
        "alice": generated["auth-user-alice"],
        "gina": generated["auth-user-gina"],
    }
    assert declaration["users"]["gina"]["grants"] == {"default": [["experiment", "*", "EDIT"]]}
    assert set(declaration["roles"]) == {"data-scientist", "governance"}
    # No password anywhere in plain inputs: not in env, not in argv.
    plain = json.dumps([mlflow.inputs["envs"], command, mlflow.inputs["entrypoints"]])
    assert not any(password in plain for password in generated.values())


def test_nginx_keeps_the_only_port_but_checks_no_password(mlflow_run):
    nginx = containers(mlflow_run)[NGINX]
    files = files_of(nginx)
    assert "/etc/nginx/mlflow/htpasswd" not in files
    conf = files["/etc/nginx/nginx.conf"]["content"]
    assert 'auth_basic "MLflow"' not in conf and "auth_basic_user_file" not in conf
    assert 'proxy_set_header Authorization "";' not in conf  # MLflow needs the credentials
    assert f'proxy_set_header {contract.PROXY_USER_HEADER_NAME} "";' in conf
    published = [name for name, c in containers(mlflow_run).items() if c.inputs.get("ports")]
    assert published == [NGINX]
    # Nor any resource of nginx's own user.
    assert not [r for r in mlflow_run.of_type(PASSWORD) if r.name.startswith("proxy-")]


def test_the_outputs_are_the_admin_and_each_user_all_secret(mlflow_run):
    generated = {r.name: generated_value(r) for r in mlflow_run.of_type(PASSWORD)}
    assert mlflow_run.outputs["username"] == ("admin", False)
    assert mlflow_run.outputs["password"] == (generated["auth-admin"], True)
    users, secret = mlflow_run.outputs["users"]
    assert secret is True
    assert users == {"alice": generated["auth-user-alice"], "gina": generated["auth-user-gina"]}
    env, secret = mlflow_run.outputs["clientEnv"]
    assert secret is True and "MLFLOW_TRACKING_USERNAME='admin'" in env


def test_postgres_makes_room_for_the_auth_pools(mlflow_run, dev_run):
    def max_connections(run) -> int:
        command = containers(run)[POSTGRES].inputs["command"]
        return int(next(c for c in command if c.startswith("max_connections=")).split("=")[1])

    # Three pools per worker with basic-auth (tracking, registry, auth), two without.
    assert max_connections(mlflow_run) > max_connections(dev_run)


def test_the_proxy_mode_declares_nothing(dev_run):
    assert not dev_run.of_type("mlflow-platform:docker:MlflowAuth")
    assert "users" not in dev_run.outputs
    assert contract.PROMOTER_ROLES not in envs_of(containers(dev_run)[MLFLOW])


def test_the_same_config_renders_the_same_declaration():
    """No container replacement between two `up`s of an unchanged config (uploads are ForceNew)."""

    def declaration(run) -> str:
        mlflow = containers(run)[MLFLOW]
        return files_of(mlflow)[envs_of(mlflow)[f"{contract.AUTH_DECLARATION}_FILE"]]["content"]

    reordered = dict(reversed(list(USERS.items())))
    assert declaration(run_program(mlflow_mode_config(), stack="dev")) == declaration(
        run_program(mlflow_mode_config(reordered), stack="dev")
    )
