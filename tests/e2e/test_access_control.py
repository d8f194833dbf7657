"""Access control as code, end to end: the dev stack with `auth.mode: mlflow` (MLflow's basic-auth
app behind nginx, which authenticates nobody itself), users and roles from stack config.

Two servers boot together against one empty PostgreSQL: the declaration is applied once (the
migration lock), the other finds nothing to do. Then the real client through nginx: a data
scientist logs a run and registers a model, and is refused with MLflow's 403 when it sets
`champion`; a governance user sets it; the audit log names both. A redeploy without a user
refuses that user; another with the same declaration changes no row.

Its own topology (~20 s, 2 servers + nginx; the redeploys restart both servers twice, ~15 s
each): the shared basic_auth_stack's modules count its boot outcomes and its users, which a
redeploy and declared users would change.
"""

from __future__ import annotations

import re
import time

import pytest
import requests
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from components.config import parse_settings
from images.mlflow import server_contract as contract
from testkit.mlflow_client import pointed_at

from .conftest import require_nginx, start_topology, stop_topology
from .helpers import audit_lines, server_environments, unique

pytestmark = pytest.mark.e2e

USERS = {
    "alice": {"roles": ["data-scientist"]},
    "gina": {"roles": ["governance"]},
    "bob": {"roles": ["data-scientist"]},
}
CHANGES = re.compile(r"auth declaration: (\d+) change\(s\)")
AUTH_TABLES = ("users", "roles", "role_permissions", "user_role_assignments")


def settings(users: dict) -> dict:
    # One worker each: the redeploys restart both servers twice, and each worker boots MLflow.
    return {"tracking": {"replicas": 2, "workers": 1}, "auth": {"mode": "mlflow", "users": users}}


@pytest.fixture(scope="module")
def rbac(server_venv):
    require_nginx()
    topo = start_topology(settings=settings(USERS))
    yield topo
    stop_topology(topo)


def as_user(topo, name: str):
    env = {"MLFLOW_TRACKING_USERNAME": name, "MLFLOW_TRACKING_PASSWORD": topo.user_passwords[name]}
    return pointed_at(topo.tracking_uri, env)


def auth_rows(topo) -> dict[str, list[tuple]]:
    conn = topo.postgres.connect("mlflow_auth")
    try:
        with conn.cursor() as cur:
            found = {}
            for table in AUTH_TABLES:
                cur.execute(f"SELECT * FROM {table} ORDER BY id")
                found[table] = cur.fetchall()
            return found
    finally:
        conn.close()


def boot_changes(topo) -> list[int]:
    """N of each server start's 'auth declaration: N change(s)' line, in server order."""
    return [int(m.group(1)) for inst in topo.instances for m in CHANGES.finditer(inst.log_text())]


def test_two_servers_booting_together_apply_the_declaration_once(rbac):
    changes = boot_changes(rbac)
    # One applied it; the other waited for the lock, then found nothing to do.
    assert sorted(changes)[0] == 0 and sorted(changes)[1] > 0 and len(changes) == 2, changes
    users = {row[1]: row[3] for row in auth_rows(rbac)["users"]}
    assert users == {"admin": True, "alice": False, "gina": False, "bob": False}
    assert not any(rbac.error_lines().values()), rbac.error_lines()
    # No password in any log: the declaration travelled as a file and left the environment.
    logs = "\n".join(inst.log_text() for inst in rbac.instances)
    assert not any(password in logs for password in rbac.user_passwords.values())


def test_the_users_passwords_never_reach_the_server_processes(rbac):
    """The boot step applies the declaration, then execs the server without it."""
    processes = server_environments(rbac)
    for pid, names, environ in processes:
        assert not {contract.AUTH_DECLARATION, f"{contract.AUTH_DECLARATION}_FILE"} & names, pid
        assert not any(password in environ for password in rbac.user_passwords.values()), pid
        assert contract.PROMOTER_ROLES in names  # what the server does need is there
    assert len(processes) >= len(rbac.instances)


def test_a_data_scientist_registers_but_only_governance_sets_champion(rbac, tmp_path):
    model = unique("fraud")
    (tmp_path / "MLmodel").write_text("flavors: {}\n")
    with as_user(rbac, "alice"):
        client = MlflowClient()
        experiment_id = client.create_experiment(unique("rbac"))
        run = client.create_run(experiment_id)
        client.log_metric(run.info.run_id, "auc", 0.91)
        client.log_artifact(run.info.run_id, str(tmp_path / "MLmodel"), "model")
        client.set_terminated(run.info.run_id)
        client.create_registered_model(model)
        version = client.create_model_version(model, f"runs:/{run.info.run_id}/model", run_id=run.info.run_id)
        with pytest.raises(MlflowException) as refused:
            client.set_registered_model_alias(model, "champion", version.version)
        assert "403" in str(refused.value) and "Permission denied" in str(refused.value)
        # Retiring a model is governance's too, though MLflow made alice its MANAGE owner.
        with pytest.raises(MlflowException, match="Permission denied"):
            client.delete_registered_model(model)
    with as_user(rbac, "gina"):
        client = MlflowClient()
        client.set_registered_model_alias(model, "champion", version.version)
        assert client.get_model_version_by_alias(model, "champion").version == version.version

    deadline = time.monotonic() + 10
    while True:
        alias_lines = [
            (line["user"], line["status"])
            for line in audit_lines(rbac)
            if line["path"].endswith("/registered-models/alias") and line["ids"].get("name") == model
        ]
        if len(alias_lines) >= 2 or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert alias_lines == [("alice", 403), ("gina", 200)]


def test_nginx_vouches_for_nobody_in_mlflow_mode(rbac):
    search = f"{rbac.tracking_uri}/api/2.0/mlflow/experiments/search?max_results=1"
    # A client-sent identity header is dropped: without credentials MLflow answers 401.
    claimed = requests.get(search, headers={contract.PROXY_USER_HEADER_NAME: "gina"}, timeout=10)
    assert claimed.status_code == 401
    assert requests.get(search, auth=("gina", rbac.user_passwords["gina"]), timeout=10).status_code == 200


def test_a_removed_user_is_refused_and_a_second_deploy_changes_no_row(rbac):
    search = f"{rbac.tracking_uri}/api/2.0/mlflow/experiments/search?max_results=1"
    bob = ("bob", rbac.user_passwords["bob"])
    assert requests.get(search, auth=bob, timeout=10).status_code == 200

    kept = {name: user for name, user in USERS.items() if name != "bob"}
    rbac.redeclare(parse_settings({"target": "docker", **settings(kept)}).auth)
    assert requests.get(search, auth=bob, timeout=10).status_code == 401
    assert requests.get(search, auth=("alice", rbac.user_passwords["alice"]), timeout=10).status_code == 200
    assert any("deleted user bob (removed from the declaration)" in inst.log_text() for inst in rbac.instances)
    after_removal = auth_rows(rbac)
    assert "bob" not in {row[1] for row in after_removal["users"]}

    rbac.redeclare(parse_settings({"target": "docker", **settings(kept)}).auth)
    assert auth_rows(rbac) == after_removal
    changes = boot_changes(rbac)  # per server: first deploy, the removal, the same again
    assert len(changes) == 6 and changes[2::3] == [0, 0], changes
