"""deploy/aws/upgrade.py's decisions and sequence, against botocore Stubbers (no AWS): every AWS
call it makes is stubbed in order with its expected parameters, so an extra, missing or reordered
call fails the test (Stubber raises on an unexpected call; assert_no_pending_responses on a missing one).

AWS facts it relies on: a stopped task's container reports `exitCode` (ECS DescribeTasks);
Application Auto Scaling scales a service back to its minimum capacity unless its scaling is
suspended (RegisterScalableTarget SuspendedState, "Suspending and resuming scaling"); a DB snapshot
is restorable once its status is `available` (the boto3 waiter db_snapshot_available).
"""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.stub import Stubber

from deploy.aws import upgrade

OUTPUTS = {
    "cluster": "arn:aws:ecs:eu-west-1:123456789012:cluster/mlflow-prod-abc",
    "service": "mlflow-prod-123",
    "taskDefinitionFamily": "mlflow-prod-schema-upgrade",
    "containerName": "mlflow",
    "subnets": ["subnet-a", "subnet-b"],
    "securityGroups": ["sg-tasks"],
    "scalableResourceId": "service/mlflow-prod-abc/mlflow-prod-123",
    "logGroup": "/mlflow/prod/tracking-server-xyz",
    "logStreamPrefix": "schema-upgrade/mlflow",
    "dbInstanceIdentifier": "mlflow-prod-q1w2e3",
    "targets": [],
}
NO_WAIT = {"Delay": 0, "MaxAttempts": 2}
TASK_ARN = "arn:aws:ecs:eu-west-1:123456789012:task/mlflow-prod-abc/0123456789abcdef"


class Aws:
    def __init__(self):
        kwargs = {"region_name": "eu-west-1", "aws_access_key_id": "x", "aws_secret_access_key": "y"}
        self.ecs, self.rds = boto3.client("ecs", **kwargs), boto3.client("rds", **kwargs)
        self.autoscaling = boto3.client("application-autoscaling", **kwargs)
        self.stubs = [Stubber(c) for c in (self.ecs, self.rds, self.autoscaling)]
        self.ecs_stub, self.rds_stub, self.scaling_stub = self.stubs

    def __enter__(self):
        for stub in self.stubs:
            stub.activate()
        return self

    def __exit__(self, *exc):
        if exc[0] is None:
            for stub in self.stubs:
                stub.assert_no_pending_responses()
        for stub in self.stubs:
            stub.deactivate()

    def upgrade(self, **extra_outputs) -> upgrade.Upgrade:
        waits = {"task": NO_WAIT, "snapshot": NO_WAIT, "service": NO_WAIT}
        outputs = {**OUTPUTS, **extra_outputs}
        return upgrade.Upgrade(outputs, self.ecs, self.rds, self.autoscaling, waits=waits, clock=lambda: 0)

    def task(self, command: list[str], exit_code: int | None):
        self.ecs_stub.add_response("run_task", {"tasks": [{"taskArn": TASK_ARN}], "failures": []}, {
            "cluster": OUTPUTS["cluster"], "taskDefinition": "mlflow-prod-schema-upgrade", "launchType": "FARGATE",
            "count": 1, "startedBy": "mlflow-platform-upgrade",
            "networkConfiguration": {"awsvpcConfiguration": {
                "subnets": ["subnet-a", "subnet-b"], "securityGroups": ["sg-tasks"], "assignPublicIp": "DISABLED"}},
            "overrides": {"containerOverrides": [{"name": "mlflow", "command": command}]},
        })  # fmt: skip
        container = {"name": "mlflow", **({"exitCode": exit_code} if exit_code is not None else {})}
        stopped = {"tasks": [{"taskArn": TASK_ARN, "lastStatus": "STOPPED", "containers": [container],
                              "stoppedReason": "Essential container in task exited"}]}  # fmt: skip
        for _ in range(2):  # the waiter's describe, then ours
            self.ecs_stub.add_response("describe_tasks", stopped, {"cluster": OUTPUTS["cluster"], "tasks": [TASK_ARN]})

    def snapshot(self):
        name = "mlflow-prod-q1w2e3-pre-upgrade-19700101000000"
        self.rds_stub.add_response(
            "create_db_snapshot",
            {"DBSnapshot": {"DBSnapshotIdentifier": name}},
            {"DBSnapshotIdentifier": name, "DBInstanceIdentifier": "mlflow-prod-q1w2e3"},
        )
        self.rds_stub.add_response("describe_db_snapshots",
                                   {"DBSnapshots": [{"DBSnapshotIdentifier": name, "Status": "available"}]},
                                   {"DBSnapshotIdentifier": name})  # fmt: skip
        return name

    def count(self, desired: int):
        self.ecs_stub.add_response(
            "describe_services",
            {"services": [{"desiredCount": desired}]},
            {"cluster": OUTPUTS["cluster"], "services": [OUTPUTS["service"]]},
        )

    def scaling(self, suspended: bool):
        self.scaling_stub.add_response("register_scalable_target", {}, {
            "ServiceNamespace": "ecs", "ResourceId": OUTPUTS["scalableResourceId"],
            "ScalableDimension": "ecs:service:DesiredCount",
            "SuspendedState": {"DynamicScalingInSuspended": suspended, "DynamicScalingOutSuspended": suspended,
                               "ScheduledScalingSuspended": suspended},
        })  # fmt: skip

    def scale(self, count: int, service: str = OUTPUTS["service"]):
        self.ecs_stub.add_response(
            "update_service",
            {"service": {}},
            {"cluster": OUTPUTS["cluster"], "service": service, "desiredCount": count},
        )
        stable = {"services": [{"deployments": [{}], "runningCount": count, "desiredCount": count, "status": "ACTIVE"}]}
        self.ecs_stub.add_response("describe_services", stable, {"cluster": OUTPUTS["cluster"], "services": [service]})


@pytest.mark.parametrize("state", ["current", "empty"])
def test_a_current_or_empty_schema_changes_nothing(state):
    """Only the status task runs: no snapshot, no scaling (Stubber refuses any other call)."""
    with Aws() as aws:
        aws.task(["schema-status"], upgrade.contract.SCHEMA_STATUS_EXIT_CODES[state])
        assert aws.upgrade().before() == upgrade.UpgradeState(upgraded=False)


# With server jobs the stack exports its one-task scheduler service: it writes job rows, so it is
# stopped with the servers and started again with them.
SCHEDULER = [{}, {"schedulerService": "mlflow-prod-scheduler-456"}]


@pytest.mark.parametrize("outputs", SCHEDULER)
def test_an_older_schema_is_snapshotted_then_upgraded_with_every_server_stopped(outputs):
    with Aws() as aws:
        aws.task(["schema-status"], 10)
        snapshot = aws.snapshot()
        aws.count(3)
        aws.scaling(suspended=True)  # before the scale-in, or autoscaling brings tasks back
        aws.scale(0)  # and waits until none runs
        for scheduler in outputs.values():
            aws.scale(0, scheduler)
        aws.task(["upgrade"], 0)
        state = aws.upgrade(**outputs).before()
    assert state == upgrade.UpgradeState(upgraded=True, desired_count=3, snapshot=snapshot)
    with Aws() as aws:
        aws.scale(3)
        for scheduler in outputs.values():
            aws.scale(1, scheduler)
        aws.scaling(suspended=False)
        aws.upgrade(**outputs).after(state)


@pytest.mark.parametrize("outputs", SCHEDULER)
def test_a_failed_upgrade_restarts_the_old_version_and_says_how_to_restore_the_snapshot(outputs):
    with Aws() as aws:
        aws.task(["schema-status"], 10)
        snapshot = aws.snapshot()
        aws.count(2)
        aws.scaling(suspended=True)
        aws.scale(0)
        for scheduler in outputs.values():
            aws.scale(0, scheduler)
        aws.task(["upgrade"], 1)
        aws.scale(2)
        for scheduler in outputs.values():
            aws.scale(1, scheduler)
        aws.scaling(suspended=False)
        with pytest.raises(upgrade.UpgradeError) as failed:
            aws.upgrade(**outputs).before()
    message = str(failed.value)
    assert "exit code 1" in message and "back at 2 tasks of the old version" in message
    assert f"aws rds restore-db-instance-from-db-snapshot --db-snapshot-identifier {snapshot}" in message


def test_a_schema_newer_than_the_image_refuses_the_deploy_before_any_change():
    with Aws() as aws:
        aws.task(["schema-status"], 11)
        with pytest.raises(upgrade.UpgradeError, match="newer than this image's MLflow"):
            aws.upgrade().before()


@pytest.mark.parametrize("code", [None, 1, 137])
def test_a_status_task_without_a_known_state_refuses_the_deploy(code):
    """A task that could not reach the database (exit 1) or never ran its command is no answer."""
    with pytest.raises(upgrade.UpgradeError, match=f"did not report a state \\(exit code {code}"):
        upgrade.decide(code, "CannotPullContainerError")


def test_after_does_nothing_when_nothing_was_upgraded():
    with Aws() as aws:
        aws.upgrade().after(upgrade.UpgradeState(upgraded=False))


def test_main_hands_the_state_from_before_to_after_and_exits_1_on_refusal(tmp_path, capsys, monkeypatch):
    for name in ("TASK_WAIT", "SNAPSHOT_WAIT", "SERVICE_WAIT"):
        monkeypatch.setattr(upgrade, name, NO_WAIT)
    monkeypatch.setattr(upgrade.time, "time", lambda: 0)
    outputs, state = tmp_path / "outputs.json", tmp_path / "state.json"
    outputs.write_text(json.dumps(OUTPUTS))
    with Aws() as aws:
        aws.task(["schema-status"], 10)
        aws.snapshot()
        aws.count(2)
        aws.scaling(suspended=True)
        aws.scale(0)
        aws.task(["upgrade"], 0)
        clients = (aws.ecs, aws.rds, aws.autoscaling)
        assert upgrade.main(["before", "--outputs", str(outputs), "--state", str(state)], clients) == 0
    saved = json.loads(state.read_text())
    assert (saved["upgraded"], saved["desired_count"]) == (True, 2)
    with Aws() as aws:
        aws.scale(2)
        aws.scaling(suspended=False)
        assert upgrade.main(["after", "--state", str(state)], (aws.ecs, aws.rds, aws.autoscaling)) == 0
    with Aws() as aws:
        aws.task(["schema-status"], 11)
        assert (
            upgrade.main(
                ["before", "--outputs", str(outputs), "--state", str(state)], (aws.ecs, aws.rds, aws.autoscaling)
            )
            == 1
        )
    assert "newer than this image's MLflow" in capsys.readouterr().err
