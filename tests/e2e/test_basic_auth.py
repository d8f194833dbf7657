"""MLflow's basic-auth app as the AWS stack runs it by default (`auth.mode: basic-auth`).

Two servers with `--app-name basic-auth` start at once against one empty PostgreSQL:
the boot module creates the auth database and migrates both schemas exactly once,
writes the auth app's ini (credential cache on), and both serve. Then the real client:
anonymous and wrong-password calls are refused, the generated admin can work, and a
user the admin creates is confined by permissions. No nginx: MLflow itself does auth.
"""

from __future__ import annotations

import configparser
import os
import re
import urllib.parse

import mlflow
import pytest
import requests
from mlflow.exceptions import MlflowException
from mlflow.server import get_app_client

from images.mlflow import server_contract as contract
from testkit.mlflow_client import client_state, restore_client_state

pytestmark = pytest.mark.e2e

SERVERS = 2
HOST = {"Host": "127.0.0.1"}


@pytest.fixture
def authed(basic_auth_stack):
    assert len(basic_auth_stack.instances) == SERVERS
    return basic_auth_stack


@pytest.fixture
def as_user(monkeypatch, authed):
    def use(username: str, password: str, server: int = 0) -> str:
        uri = f"http://127.0.0.1:{authed.instances[server].port}"
        monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", username)
        monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", password)
        mlflow.set_tracking_uri(uri)
        return uri

    saved = client_state()
    yield use
    restore_client_state(saved)


def test_auth_database_created_and_migrated_once_without_errors(authed):
    logs = [inst.log_text() for inst in authed.instances]
    assert sum(len(re.findall(r"created database mlflow_auth", log)) for log in logs) == 1
    assert sorted(authed.schema_outcomes()) == ["created"] + ["current"] * (SERVERS - 1)
    assert not any(authed.error_lines().values()), authed.error_lines()
    conn = authed.postgres.connect("mlflow_auth")
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM alembic_version_auth")
            assert cur.fetchone() == (1,)
            cur.execute("SELECT username, is_admin FROM users")
            assert cur.fetchall() == [("admin", True)]
    finally:
        conn.close()


def test_auth_ini_is_owner_only_with_the_credential_cache_on(authed):
    for inst in authed.instances:
        path = inst.spec.env["MLFLOW_AUTH_CONFIG_PATH"]
        config = configparser.ConfigParser()  # as MLflow reads it: with interpolation
        config.read(path)
        assert int(config["mlflow"]["auth_cache_ttl_seconds"]) > 0
        # Parsed, never shown: the URI holds the password.
        uri = urllib.parse.urlsplit(config["mlflow"]["database_uri"])
        query = dict(urllib.parse.parse_qsl(uri.query))
        assert uri.path == "/mlflow_auth" and query.pop("sslmode") == "disable"
        assert query == dict(contract.DB_TCP_OPTIONS)  # the auth store's pool survives a failover too
        assert os.stat(path).st_mode & 0o777 == 0o600


def test_anonymous_and_wrong_password_are_refused_health_is_open(authed):
    url = authed.instances[0].url
    assert requests.get(f"{url}/health", headers=HOST, timeout=10).status_code == 200
    search = f"{url}/api/2.0/mlflow/experiments/search?max_results=1"
    assert requests.get(search, headers=HOST, timeout=10).status_code == 401
    assert requests.get(search, headers=HOST, auth=("admin", "wrong-password"), timeout=10).status_code == 401
    assert requests.get(search, headers=HOST, auth=("admin", authed.auth_admin_password), timeout=10).status_code == 200


def test_admin_works_on_any_server_and_a_new_user_is_confined(authed, as_user):
    as_user("admin", authed.auth_admin_password, server=0)
    experiment = mlflow.create_experiment("basic-auth-e2e")
    with mlflow.start_run(experiment_id=experiment):
        mlflow.log_metric("loss", 0.5)
    # The session key is shared, so the other server accepts the same admin.
    uri = as_user("admin", authed.auth_admin_password, server=1)
    assert mlflow.get_experiment(experiment).name == "basic-auth-e2e"
    get_app_client("basic-auth", tracking_uri=uri).create_user("analyst", "analyst-password-123")
    get_app_client("basic-auth", tracking_uri=uri).grant_user_permission("analyst", "experiment", experiment, "READ")

    as_user("analyst", "analyst-password-123", server=0)
    assert mlflow.get_experiment(experiment).name == "basic-auth-e2e"
    with pytest.raises(MlflowException, match="PERMISSION_DENIED|Permission denied|403"):
        mlflow.delete_experiment(experiment)
