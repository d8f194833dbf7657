"""GarbageCollector: `mlflow gc` as a scheduled ECS task (components/aws/garbage_collector.py)."""

from __future__ import annotations

import json

import pytest

from components.aws.garbage_collector import gc_log_group_prefix
from components.aws.lib.container import GC_CONTAINER_NAME, IMAGE_USER
from components.specs.gc import gc_command
from images.mlflow import server_contract as contract
from images.mlflow.server_contract import ARTIFACTS_DESTINATION
from tests.mocks.prod_helpers import (
    ACCOUNT,
    BUCKET,
    GC,
    REGION,
    aws_outputs,
    container,
    container_secrets,
    log_group_name,
    policy,
    reveal,
    run_prod,
    statements,
)

TASK = "aws:ecs/taskDefinition:TaskDefinition"
SCHEDULE = "aws:scheduler/schedule:Schedule"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"


@pytest.fixture(scope="module")
def gc_run():
    return run_prod(gc=GC)


def gc_task(run):
    return run.one(TASK, "-gc")


def gc_container(run) -> dict:
    (definition,) = json.loads(reveal(gc_task(run).inputs["containerDefinitions"]))
    return definition


def role_arn(run, name_contains: str) -> str:
    role = run.one(ROLE, name_contains)
    return f"arn:aws:iam::{ACCOUNT}:role/{role.name}"


def test_nothing_is_created_unless_gc_is_configured(prod_run):
    assert prod_run.of_type(SCHEDULE) == []
    # The server's task, the periodic-task scheduler's and the schema upgrade's
    # (test_prod_schema_upgrade.py), no gc task.
    assert sorted(t.name for t in prod_run.of_type(TASK)) == [
        "mlflow-prod", "mlflow-prod-scheduler", "mlflow-prod-schema-upgrade"
    ]  # fmt: skip
    assert not [g for g in prod_run.of_type(LOG_GROUP) if "/gc-" in str(g.plain.get("namePrefix"))]
    assert not [r for r in prod_run.of_type(ROLE) if "-gc" in r.name]


def test_the_task_runs_the_shared_gc_command_from_the_servers_image(gc_run):
    gc = gc_container(gc_run)
    assert gc["entryPoint"] + gc["command"] == list(gc_command("30d"))
    assert gc["image"] == container(gc_run)["image"]
    assert gc["name"] == GC_CONTAINER_NAME and gc["essential"] is True
    # No port, no health check: a job that exits.
    assert "portMappings" not in gc and "healthCheck" not in gc
    assert gc["user"] == IMAGE_USER and gc["readonlyRootFilesystem"] is True
    assert gc["linuxParameters"]["capabilities"] == {"drop": ["ALL"]}
    (mount,) = gc["mountPoints"]
    env = {e["name"]: e["value"] for e in gc["environment"]}
    assert mount["containerPath"] == env["TMPDIR"] == env["HOME"]


def test_gc_signs_in_as_the_servers_role_and_is_handed_only_its_password(gc_run):
    """gc deletes rows (DML, which mlflow_server has) and never migrates: no owner credentials."""
    gc = gc_container(gc_run)
    env = {e["name"]: e["value"] for e in gc["environment"]}
    server_env = {e["name"]: e["value"] for e in container(gc_run)["environment"]}
    assert env[contract.DB_USER] == server_env[contract.DB_USER] == contract.SERVER_DB_ROLE
    assert contract.DB_OWNER_USER not in env
    for key in (contract.DB_HOST, contract.DB_PORT, contract.DB_NAME, contract.DB_SSLMODE, contract.DB_SSLROOTCERT):
        assert env[key] == server_env[key]
    secrets = {s["name"]: s["valueFrom"] for s in gc["secrets"]}
    assert secrets == {contract.DB_PASSWORD: container_secrets(gc_run)[contract.DB_PASSWORD]}


def test_gc_resolves_proxied_artifacts_to_the_bucket_the_server_writes(gc_run):
    bucket = gc_run.one(BUCKET, "-artifacts")
    env = {e["name"]: e["value"] for e in gc_container(gc_run)["environment"]}
    root = f"s3://{aws_outputs(bucket.typ, bucket.name, bucket.plain)['bucket']}/"
    assert env[ARTIFACTS_DESTINATION] == root
    assert root in container(gc_run)["command"]


def test_gc_uses_the_servers_roles_and_its_own_log_group(gc_run):
    task = gc_task(gc_run).plain
    (server,) = [t.plain for t in gc_run.of_type(TASK) if t.name == "mlflow-prod"]
    assert task["taskRoleArn"] == server["taskRoleArn"] == role_arn(gc_run, "-task")
    assert task["executionRoleArn"] == server["executionRoleArn"]
    assert task["family"] == "mlflow-prod-gc"
    assert task["requiresCompatibilities"] == ["FARGATE"] and task["networkMode"] == "awsvpc"
    group = gc_run.one(LOG_GROUP, "-gc")
    assert group.plain["namePrefix"] == gc_log_group_prefix("prod")
    assert group.plain["retentionInDays"] == 365
    logs_key = gc_run.one("aws:kms/key:Key", "-logs")
    assert group.plain["kmsKeyId"] == aws_outputs(logs_key.typ, logs_key.name, logs_key.plain)["arn"]
    assert gc_container(gc_run)["logConfiguration"]["options"]["awslogs-group"] == log_group_name(group)
    # The logs key lets CloudWatch Logs encrypt gc's group (its policy names the prefixes).
    allowed = statements(policy(logs_key), "CloudWatchLogsOfThisStack")["Condition"]["ArnLike"]
    assert f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{gc_log_group_prefix('prod')}*" in next(iter(allowed.values()))


def test_the_execution_grant_for_gc_reads_its_log_group_and_secret_only(gc_run):
    grant = policy(gc_run.one(ROLE_POLICY, "-gc-execution"))
    group = log_group_name(gc_run.one(LOG_GROUP, "-gc"))
    assert statements(grant, "WriteContainerLogs")["Resource"] == [
        f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{group}:log-stream:*"
    ]
    (secret_arn,) = statements(grant, "ReadTheTaskSecrets")["Resource"]
    assert container_secrets(gc_run)[contract.DB_PASSWORD].startswith(secret_arn)


def test_the_schedule_runs_one_task_in_the_servers_cluster_and_network(gc_run):
    schedule = gc_run.one(SCHEDULE).plain
    assert schedule["scheduleExpression"] == GC["schedule"]
    assert schedule["flexibleTimeWindow"] == {"mode": "OFF"}
    target = schedule["target"]
    cluster = gc_run.one("aws:ecs/cluster:Cluster")
    assert target["arn"] == aws_outputs(cluster.typ, cluster.name, cluster.plain)["arn"]
    ecs = target["ecsParameters"]
    assert ecs["taskDefinitionArn"] == aws_outputs(TASK, gc_task(gc_run).name, gc_task(gc_run).plain)["arn"]
    assert ecs["taskCount"] == 1 and ecs["launchType"] == "FARGATE"
    service = gc_run.exactly("aws:ecs/service:Service", "mlflow-prod").plain["networkConfiguration"]
    network = ecs["networkConfiguration"]
    assert network["subnets"] == service["subnets"]
    assert network["securityGroups"] == service["securityGroups"]
    assert network["assignPublicIp"] is False
    assert target["retryPolicy"]["maximumEventAgeInSeconds"] == 3600


def test_the_scheduler_role_is_trusted_by_this_accounts_schedules_and_may_only_run_gc(gc_run):
    role = gc_run.one(ROLE, "-gc-scheduler")
    assert gc_run.one(SCHEDULE).plain["target"]["roleArn"] == f"arn:aws:iam::{ACCOUNT}:role/{role.name}"
    (trust,) = json.loads(role.plain["assumeRolePolicy"])["Statement"]
    assert trust["Principal"] == {"Service": "scheduler.amazonaws.com"}
    assert trust["Condition"]["StringEquals"] == {"aws:SourceAccount": ACCOUNT}
    assert trust["Condition"]["ArnLike"] == {"aws:SourceArn": f"arn:aws:scheduler:{REGION}:{ACCOUNT}:schedule/*"}
    grant = policy(gc_run.one(ROLE_POLICY, "-gc-scheduler"))
    run_task = statements(grant, "RunTheGcTask")
    assert run_task["Action"] == ["ecs:RunTask"]
    assert run_task["Resource"] == [f"arn:aws:ecs:{REGION}:{ACCOUNT}:task-definition/mlflow-prod-gc:*"]
    cluster = gc_run.one("aws:ecs/cluster:Cluster")
    assert run_task["Condition"] == {"ArnEquals": {"ecs:cluster": aws_outputs(cluster.typ, cluster.name, {})["arn"]}}
    passing = statements(grant, "PassItsRoles")
    assert sorted(passing["Resource"]) == sorted([role_arn(gc_run, "-execution"), role_arn(gc_run, "-task")])
    assert passing["Condition"] == {"StringEquals": {"iam:PassedToService": "ecs-tasks.amazonaws.com"}}
    assert {s["Sid"] for s in grant["Statement"]} == {"RunTheGcTask", "PassItsRoles"}


@pytest.mark.parametrize(
    ("gc", "message"),
    [
        ({"olderThan": "30d"}, "gc.schedule: required with gc.olderThan"),
        ({"schedule": "rate(1 day)"}, "gc.olderThan: required with gc.schedule"),
        ({"olderThan": "30 days", "schedule": "rate(1 day)"}, "gc.olderThan: '30 days' is not"),
        ({"olderThan": "30d", "schedule": "every day"}, "gc.schedule"),
    ],
)
def test_bad_gc_config_is_refused_with_the_key_named(gc, message):
    run = run_prod(raise_errors=False, gc=gc)
    assert run.error is not None
    assert message in str(run.error)
