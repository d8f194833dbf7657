"""The audit log (images/mlflow/server_app.py) as both stacks write it, driven by the real client.

Dev: nginx authenticates and names the user (X-MLflow-Platform-User, any client-sent value
replaced). Prod's default: MLflow's basic-auth app, which also refuses; both write the same lines,
to stdout and to <scratch>/audit/audit.jsonl, with no secret in any log of the topology.
"""

from __future__ import annotations

from pathlib import Path

import mlflow
import pytest
import requests
from mlflow import MlflowClient
from mlflow.exceptions import MlflowException

from images.mlflow import server_contract as contract
from testkit.mlflow_client import pointed_at

from .helpers import audit_lines, unique, wait_for

pytestmark = pytest.mark.e2e


def lines_for(topo, **match) -> list[dict]:
    return [line for line in audit_lines(topo) if all(line.get(k) == v for k, v in match.items())]


def all_logs(topo) -> str:
    files = [p for p in Path(topo.base_dir).rglob("*") if p.is_file() and p.suffix in {".log", ".jsonl", ".txt"}]
    return "\n".join(p.read_text(errors="replace") for p in files) + "\n".join(topo.logs().values())


def test_each_write_through_the_proxy_is_one_line_naming_the_proxy_user(tracking):
    client = MlflowClient()
    name = unique("audit")
    experiment_id = client.create_experiment(name)
    run = client.create_run(experiment_id)
    client.log_metric(run.info.run_id, "loss", 0.5)
    client.log_param(run.info.run_id, "lr", "0.1")
    client.set_terminated(run.info.run_id)
    client.delete_run(run.info.run_id)
    client.search_runs([experiment_id])  # a read: no line

    wait_for(lambda: [line for line in audit_lines(tracking) if line["ids"].get("run_id") == run.info.run_id
                      and line["path"].endswith("/runs/delete")])  # fmt: skip
    created = lines_for(tracking, path="/api/2.0/mlflow/experiments/create")
    mine = [line for line in created if line["ids"].get("name") == name]
    assert len(mine) == 1, created
    assert mine[0]["user"] == tracking.username and mine[0]["status"] == 200
    assert mine[0]["client"] == "127.0.0.1" and mine[0]["duration_ms"] >= 0

    of_run = [line for line in audit_lines(tracking) if line["ids"].get("run_id") == run.info.run_id]
    # Lines from both servers' files: order by nothing, count each.
    paths = sorted(line["path"] for line in of_run)
    assert paths == sorted(
        [
            "/api/2.0/mlflow/runs/log-metric",
            "/api/2.0/mlflow/runs/log-parameter",
            "/api/2.0/mlflow/runs/update",
            "/api/2.0/mlflow/runs/delete",
        ]
    ), paths
    assert {line["user"] for line in of_run} == {tracking.username}
    assert not lines_for(tracking, path="/api/2.0/mlflow/runs/search")


def test_a_client_cannot_claim_another_user_through_the_proxy(tracking):
    name = unique("spoof")
    response = requests.post(
        f"{tracking.tracking_uri}/api/2.0/mlflow/experiments/create",
        json={"name": name},
        auth=tracking.credentials,
        headers={contract.PROXY_USER_HEADER_NAME: "somebody-else"},
        timeout=30,
    )
    assert response.status_code == 200, response.text
    [line] = wait_for(
        lambda: [
            line
            for line in lines_for(tracking, path="/api/2.0/mlflow/experiments/create")
            if line["ids"].get("name") == name
        ]
    )
    assert line["user"] == tracking.username


@pytest.fixture
def authed(basic_auth_stack):
    """Prod's default: MLflow's basic-auth app inside ours, no proxy (shared with test_basic_auth)."""
    return basic_auth_stack


def test_basic_auth_writes_and_denials_are_lines_and_no_secret_is_logged(authed, monkeypatch):
    uri = authed.instances[0].url
    monkeypatch.setenv("MLFLOW_TRACKING_USERNAME", "admin")
    monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", authed.auth_admin_password)
    with pointed_at(uri):
        client = MlflowClient()
        experiment_id = client.create_experiment(unique("authed"))
        run = client.create_run(experiment_id)
        mlflow.log_text("audited", "note.txt", run_id=run.info.run_id)  # an artifact upload
        monkeypatch.setenv("MLFLOW_TRACKING_PASSWORD", "wrong-password-for-admin")
        with pytest.raises(MlflowException):
            MlflowClient().delete_experiment(experiment_id)

    [created] = [
        line
        for line in lines_for(authed, path="/api/2.0/mlflow/runs/create")
        if line["ids"]["experiment_id"] == experiment_id
    ]
    assert created["user"] == "admin" and created["status"] == 200
    assert created["ids"]["experiment_id"] == experiment_id
    [upload] = [
        line
        for line in lines_for(authed, method="PUT")
        if line["path"].endswith(f"/{run.info.run_id}/artifacts/note.txt")
    ]
    assert upload["status"] == 200 and upload["user"] == "admin"
    [denied] = wait_for(lambda: [
        line for line in lines_for(authed, path="/api/2.0/mlflow/experiments/delete")
        if line["ids"].get("experiment_id") == experiment_id
    ])  # fmt: skip
    assert denied["status"] == 401 and denied["ids"]["experiment_id"] == experiment_id

    logs = all_logs(authed)
    assert '"type":"audit"' in logs  # the lines on stdout too (docker logs, CloudWatch)
    # A secret this topology does not use is empty (the job queue's URL with jobs off): "" is in any text.
    secrets = [s for s in [*authed._secret_values().values(), "wrong-password-for-admin"] if s]
    leaked = [len(s) for s in secrets if s in logs]
    assert not leaked, f"{len(leaked)} secret(s) in the logs"
