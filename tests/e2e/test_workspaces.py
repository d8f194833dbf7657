"""Workspaces (`tracking.workspaces: true`) with MLflow's basic-auth app: two teams share one
server, a user granted one workspace cannot read the other's experiments or registered models,
and a client that knows nothing of workspaces still works, in the `default` workspace.

Through nginx, with the dev stack's `auth.mode: mlflow` (the basic-auth app checks the
credentials, as on the AWS stack; nginx passes the client's workspace header on).
"""

from __future__ import annotations

import mlflow
import pytest
import requests
from mlflow.exceptions import MlflowException
from mlflow.server import get_app_client
from mlflow.tracking import MlflowClient

from testkit.mlflow_client import client_state, pointed_at, restore_client_state

from .conftest import require_nginx, start_topology, stop_topology
from .helpers import unique

pytestmark = pytest.mark.e2e

TEAMS = ("team-a", "team-b")
USER, USER_PASSWORD = "alice", "alice-password-123"
# The team's role in its workspace: create there, read every experiment and model of it.
MEMBER_GRANTS = (("workspace", "USE"), ("experiment", "READ"), ("registered_model", "READ"))
REFUSED = "PERMISSION_DENIED|RESOURCE_DOES_NOT_EXIST|Permission denied|403|404"


@pytest.fixture(scope="module")
def shared(server_venv):
    require_nginx()
    settings = {"tracking": {"workspaces": True, "replicas": 1}, "auth": {"mode": "mlflow"}}
    topo = start_topology(settings=settings)
    yield topo
    stop_topology(topo)


@pytest.fixture
def as_user(monkeypatch, shared):
    uri = shared.tracking_uri

    def use(username: str, password: str, workspace: str | None) -> MlflowClient:
        monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", username)
        monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", password)
        mlflow.set_tracking_uri(uri)
        mlflow.set_workspace(workspace)
        return MlflowClient(uri)

    saved = client_state()
    yield use
    restore_client_state(saved)


@pytest.fixture(scope="module")
def teams(shared):
    """Per team: a workspace with an experiment and a registered model; `alice` may use team-a only."""
    uri = shared.tracking_uri
    made: dict[str, tuple[str, str]] = {}
    admin = {"MLFLOW_TRACKING_USERNAME": "admin", "MLFLOW_TRACKING_PASSWORD": shared.auth_admin_password}
    with pointed_at(uri, admin):
        for team in TEAMS:
            mlflow.set_workspace(None)
            mlflow.create_workspace(team)
            mlflow.set_workspace(team)
            client = MlflowClient(uri)
            experiment = client.create_experiment(unique(f"{team}-experiment"))
            model = client.create_registered_model(unique(f"{team}-model")).name
            made[team] = (experiment, model)
        mlflow.set_workspace(None)
        auth = get_app_client("basic-auth", tracking_uri=uri)
        auth.create_user(USER, USER_PASSWORD)
        role = auth.create_role(workspace="team-a", name="members")
        # A workspace grant gives the right to create there; reading needs grants per type.
        for resource_type, permission in MEMBER_GRANTS:
            auth.add_role_permission(role.id, resource_type, "*", permission)
        auth.assign_role(USER, role.id)
    return made


def test_a_member_of_one_workspace_works_there(teams, as_user):
    experiment, model = teams["team-a"]
    client = as_user(USER, USER_PASSWORD, "team-a")
    assert client.get_experiment(experiment).experiment_id == experiment
    assert client.get_registered_model(model).name == model
    mine = client.create_experiment(unique("alice"))
    with mlflow.start_run(experiment_id=mine):
        mlflow.log_metric("loss", 0.25)
    assert {e.experiment_id for e in client.search_experiments()} >= {experiment, mine}


def test_a_member_of_one_workspace_cannot_read_the_other_s_experiments_or_models(teams, as_user):
    experiment, model = teams["team-b"]
    client = as_user(USER, USER_PASSWORD, "team-b")
    with pytest.raises(MlflowException, match=REFUSED):
        client.get_experiment(experiment)
    with pytest.raises(MlflowException, match=REFUSED):
        client.get_registered_model(model)
    with pytest.raises(MlflowException, match=REFUSED):
        client.create_experiment(unique("intruder"))
    # Nor through their own workspace: team-b's ids do not resolve in team-a.
    client = as_user(USER, USER_PASSWORD, "team-a")
    with pytest.raises(MlflowException, match=REFUSED):
        client.get_experiment(experiment)
    with pytest.raises(MlflowException, match=REFUSED):
        client.get_registered_model(model)
    assert experiment not in {e.experiment_id for e in client.search_experiments()}


def test_the_other_team_s_data_is_intact_for_its_admin(teams, as_user, shared):
    experiment, model = teams["team-b"]
    client = as_user("admin", shared.auth_admin_password, "team-b")
    assert client.get_experiment(experiment).experiment_id == experiment
    assert client.get_registered_model(model).name == model
    assert {w.name for w in mlflow.list_workspaces()} >= {"default", *TEAMS}


def test_a_client_that_knows_nothing_of_workspaces_uses_the_default_one(teams, as_user, shared):
    client = as_user("admin", shared.auth_admin_password, None)
    experiment = client.create_experiment(unique("no-workspace"))
    with mlflow.start_run(experiment_id=experiment) as run:
        mlflow.log_param("p", "1")
    assert client.get_run(run.info.run_id).data.params == {"p": "1"}
    found = {e.experiment_id for e in client.search_experiments()}
    assert experiment in found and not found & {teams[t][0] for t in TEAMS}
    # Plain REST, no workspace header: the same experiment.
    response = requests.get(
        f"{shared.tracking_uri}/api/2.0/mlflow/experiments/get",
        params={"experiment_id": experiment},
        auth=("admin", shared.auth_admin_password),
        timeout=10,
    )
    assert response.status_code == 200 and response.json()["experiment"]["experiment_id"] == experiment


def test_the_servers_run_with_workspaces_on_and_the_teams_went_through_nginx(teams, shared):
    assert "--enable-workspaces" in shared.instances[0].spec.command
    assert [e for e in shared.access_log() if e["path"] == "/api/2.0/mlflow/experiments/create" and e["status"] == 200]
