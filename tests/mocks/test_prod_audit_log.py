"""The prod audit log: the server task's `audit-log` sidecar prints the servers' audit.jsonl to a
log group of its own, kept `logs.auditRetentionDays` (components/aws/lib/container.py)."""

from __future__ import annotations

import pytest

from images.mlflow import server_contract as contract
from tests.mocks.prod_helpers import container, log_group_name, prod_section, run_prod, task_containers

LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"


def test_the_sidecar_tails_the_servers_audit_file_read_only_without_secrets(prod_run):
    containers = task_containers(prod_run)
    assert set(containers) == {"mlflow", "audit-log"}
    server, sidecar = containers["mlflow"], containers["audit-log"]
    env = {e["name"]: e["value"] for e in server["environment"]}
    audit_file = f"{env[contract.AUDIT_LOG_DIR]}/{contract.AUDIT_LOG_FILE}"
    assert audit_file.startswith(server["mountPoints"][0]["containerPath"] + "/")
    assert sidecar["entryPoint"] == ["tail", "-F", "-n", "+1", audit_file]
    assert sidecar["image"] == server["image"] and sidecar["user"] == server["user"]
    assert sidecar["essential"] is False  # a dead tail never stops the server
    assert sidecar["readonlyRootFilesystem"] is True
    assert sidecar["mountPoints"] == [{**server["mountPoints"][0], "readOnly": True}]
    assert sidecar["dependsOn"] == [{"containerName": "mlflow", "condition": "START"}]
    assert "secrets" not in sidecar and "environment" not in sidecar and "portMappings" not in sidecar
    # prod never trusts a proxy's user header (the ALB passes client headers through).
    assert contract.PROXY_USER_HEADER not in env
    assert server["command"][server["command"].index("--app-name") + 1] == contract.BASIC_AUTH_APP


def test_the_audit_log_group_is_its_own_encrypted_with_the_configured_retention(prod_run):
    audit = prod_run.exactly(LOG_GROUP, "mlflow-prod-audit")
    server_group = prod_run.exactly(LOG_GROUP, "mlflow-prod")
    assert audit.plain["retentionInDays"] == prod_section("logs").get("auditRetentionDays", 365)
    assert audit.plain["kmsKeyId"] == server_group.plain["kmsKeyId"]
    sidecar = task_containers(prod_run)["audit-log"]["logConfiguration"]["options"]
    assert sidecar["awslogs-group"] == log_group_name(audit)
    assert sidecar["awslogs-stream-prefix"] == "audit-log"
    assert container(prod_run)["logConfiguration"]["options"]["awslogs-group"] == log_group_name(server_group)


def test_audit_retention_is_configurable_and_validated():
    logs = {**prod_section("logs"), "auditRetentionDays": 3653}
    run = run_prod(logs=logs)
    assert run.exactly(LOG_GROUP, "mlflow-prod-audit").plain["retentionInDays"] == 3653
    with pytest.raises(Exception, match="auditRetentionDays"):
        run_prod(logs={**logs, "auditRetentionDays": 30})
