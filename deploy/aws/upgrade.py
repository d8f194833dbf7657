"""The prod schema upgrade, run by the deploy workflow around `pulumi up` (docs/operations.md,
"Upgrading MLflow"). MLflow's release notes want a schema upgrade run with every writer stopped
and a restorable backup taken first; the servers refuse a schema that is not current
(MLFLOW_BOOT_SCHEMA=require-current), so this is the only place prod's schema moves.

    python -m deploy.aws.upgrade before --outputs schema-upgrade.json --state upgrade-state.json
    pulumi up -s prod                      # rolls out the new service (still at 0 tasks if upgraded)
    python -m deploy.aws.upgrade after --state upgrade-state.json

`before`, with the new image's upgrade task already registered (`pulumi up --target` the
`schemaUpgrade.targets` output):
1. runs that task with `schema-status`: the new image's schema head against the database's;
2. current, or an empty database (the first deploy: the first server creates it): nothing to do;
   a database newer than the image: refuse the deploy;
3. behind: take an RDS snapshot and wait for it, suspend the service's autoscaling, scale it to
   0 and wait until no task runs, run the upgrade task (`python -m mlflow_boot upgrade`) and wait
   for its exit code. On failure the service goes back to its task count on the old task
   definition (the upgrade runs in one transaction, so the old schema stands), and the way to
   restore the snapshot is printed. On success the service stays at 0 until `after`.
`after` puts the task count back and resumes autoscaling once `pulumi up` has rolled the new
task definition out.
With server jobs on, the one-task scheduler service (the output's `schedulerService`) writes to
the database too: it is stopped with the servers and started again with them (one task).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from images.mlflow import server_contract as contract

STARTED_BY = "mlflow-platform-upgrade"
EXIT_STATES = {code: state for state, code in contract.SCHEMA_STATUS_EXIT_CODES.items()}
SCALABLE_DIMENSION = "ecs:service:DesiredCount"
# A task waits for its image pull and the database; the upgrade itself is minutes at most.
TASK_WAIT = {"Delay": 10, "MaxAttempts": 180}  # 30 min
SNAPSHOT_WAIT = {"Delay": 30, "MaxAttempts": 120}  # 60 min
SERVICE_WAIT = {"Delay": 15, "MaxAttempts": 160}  # 40 min: draining tasks may hold an hour-long upload


class UpgradeError(RuntimeError):
    """A refused or failed upgrade; the message says what state prod is in and what to do."""


@dataclass
class UpgradeState:
    """What `before` leaves for `after`."""

    upgraded: bool
    desired_count: int = 0
    snapshot: str | None = None


def decide(exit_code: int | None, reason: str = "") -> str:
    """What the schema-status task's exit code means for the deploy: "none" (nothing to upgrade)
    or "upgrade"; anything else refuses the deploy before anything is changed."""
    state = EXIT_STATES.get(exit_code) if exit_code is not None else None
    if state in ("current", "empty"):
        return "none"
    if state == "behind":
        return "upgrade"
    if state == "ahead":
        raise UpgradeError(
            "the database's schema is newer than this image's MLflow (an older version is being deployed): "
            "refusing to deploy; deploy the newer version, or restore the snapshot taken before its upgrade"
        )
    raise UpgradeError(
        f"the schema-status task did not report a state (exit code {exit_code}, {reason or 'no reason'})"
    )


class Upgrade:
    """The sequence, against boto3 clients for ecs, rds and application-autoscaling."""

    def __init__(self, outputs: dict[str, Any], ecs, rds, autoscaling, *, waits: dict | None = None,
                 clock=None) -> None:  # fmt: skip
        self.o, self.ecs, self.rds, self.autoscaling = outputs, ecs, rds, autoscaling
        self.waits = waits or {"task": TASK_WAIT, "snapshot": SNAPSHOT_WAIT, "service": SERVICE_WAIT}
        self.clock = clock or time.time

    def run_task(self, command: tuple[str, ...]) -> tuple[int | None, str]:
        """Run the upgrade task definition with `command`; wait; its container's exit code and why it stopped."""
        started = self.ecs.run_task(
            cluster=self.o["cluster"],
            taskDefinition=self.o["taskDefinitionFamily"],
            launchType="FARGATE",
            count=1,
            startedBy=STARTED_BY,
            networkConfiguration={"awsvpcConfiguration": {
                "subnets": self.o["subnets"], "securityGroups": self.o["securityGroups"], "assignPublicIp": "DISABLED",
            }},
            overrides={"containerOverrides": [{"name": self.o["containerName"], "command": list(command)}]},
        )  # fmt: skip
        if started.get("failures") or not started.get("tasks"):
            raise UpgradeError(f"ECS did not start the task {' '.join(command)}: {started.get('failures')}")
        arn = started["tasks"][0]["taskArn"]
        self.ecs.get_waiter("tasks_stopped").wait(
            cluster=self.o["cluster"], tasks=[arn], WaiterConfig=self.waits["task"]
        )
        (task,) = self.ecs.describe_tasks(cluster=self.o["cluster"], tasks=[arn])["tasks"]
        container = next(c for c in task["containers"] if c["name"] == self.o["containerName"])
        print(f"task {arn} ({' '.join(command)}): exit code {container.get('exitCode')}; logs: "
              f"{self.o['logGroup']} {self.o['logStreamPrefix']}/{arn.rsplit('/', 1)[-1]}")  # fmt: skip
        return container.get("exitCode"), container.get("reason") or task.get("stoppedReason", "")

    def snapshot(self) -> str:
        name = (
            f"{self.o['dbInstanceIdentifier']}-pre-upgrade-{time.strftime('%Y%m%d%H%M%S', time.gmtime(self.clock()))}"
        )
        self.rds.create_db_snapshot(DBSnapshotIdentifier=name, DBInstanceIdentifier=self.o["dbInstanceIdentifier"])
        self.rds.get_waiter("db_snapshot_available").wait(
            DBSnapshotIdentifier=name, WaiterConfig=self.waits["snapshot"]
        )
        print(f"snapshot {name}: available")
        return name

    def scaling(self, *, suspended: bool) -> None:
        """Application Auto Scaling would bring a service at 0 back to its minimum: suspend it first."""
        self.autoscaling.register_scalable_target(
            ServiceNamespace="ecs", ResourceId=self.o["scalableResourceId"], ScalableDimension=SCALABLE_DIMENSION,
            SuspendedState={"DynamicScalingInSuspended": suspended, "DynamicScalingOutSuspended": suspended,
                            "ScheduledScalingSuspended": suspended},
        )  # fmt: skip

    def scale(self, count: int, service: str | None = None) -> None:
        service = service or self.o["service"]
        self.ecs.update_service(cluster=self.o["cluster"], service=service, desiredCount=count)
        self.ecs.get_waiter("services_stable").wait(
            cluster=self.o["cluster"], services=[service], WaiterConfig=self.waits["service"]
        )

    def scale_scheduler(self, count: int) -> None:
        """The periodic-task owner (no autoscaling): 0 with the servers, then its one task again."""
        if self.o.get("schedulerService"):
            self.scale(count, self.o["schedulerService"])

    def desired_count(self) -> int:
        (service,) = self.ecs.describe_services(cluster=self.o["cluster"], services=[self.o["service"]])["services"]
        return int(service["desiredCount"])

    def before(self) -> UpgradeState:
        if decide(*self.run_task(contract.SCHEMA_STATUS_COMMAND)) == "none":
            print("schema: nothing to upgrade")
            return UpgradeState(upgraded=False)
        snapshot = self.snapshot()
        count = self.desired_count()
        self.scaling(suspended=True)
        self.scale(0)
        self.scale_scheduler(0)
        print(f"service {self.o['service']}: stopped ({count} tasks before)")
        try:
            exit_code, reason = self.run_task(contract.UPGRADE_COMMAND)
            if exit_code != 0:
                raise UpgradeError(f"the upgrade task failed (exit code {exit_code}, {reason or 'see its logs'})")
        except Exception as error:
            self.scale(count)
            self.scale_scheduler(1)
            self.scaling(suspended=False)
            raise UpgradeError(
                f"{error}. The service is back at {count} tasks of the old version: the upgrade runs in one "
                "transaction, so the old schema stands. If those tasks refuse the schema (their log says so), "
                f"restore the snapshot: {restore_hint(snapshot, self.o['dbInstanceIdentifier'])}"
            ) from None
        return UpgradeState(upgraded=True, desired_count=count, snapshot=snapshot)

    def after(self, state: UpgradeState) -> None:
        if not state.upgraded:
            return
        self.scale(state.desired_count)
        self.scale_scheduler(1)
        self.scaling(suspended=False)
        print(f"service {self.o['service']}: {state.desired_count} tasks of the new version; autoscaling resumed")


def restore_hint(snapshot: str, instance: str) -> str:
    return (
        f"aws rds restore-db-instance-from-db-snapshot --db-snapshot-identifier {snapshot} "
        f"--db-instance-identifier {instance}-restored ... then point the stack at it (docs/operations.md, "
        "Upgrading MLflow: 'A failed upgrade')"
    )


def main(argv: list[str] | None = None, clients=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deploy.aws.upgrade", description=__doc__.split("\n\n")[0])
    parser.add_argument("step", choices=["before", "after"])
    parser.add_argument("--outputs", type=Path, help="`pulumi stack output schemaUpgrade --json`")
    parser.add_argument("--state", type=Path, required=True, help="written by `before`, read by `after`")
    args = parser.parse_args(argv)
    if args.step == "before" and args.outputs is None:
        parser.error("before needs --outputs")
    outputs = json.loads(args.outputs.read_text()) if args.outputs else json.loads(args.state.read_text())["outputs"]
    if clients is None:
        import boto3

        clients = (boto3.client("ecs"), boto3.client("rds"), boto3.client("application-autoscaling"))
    upgrade = Upgrade(outputs, *clients)
    try:
        if args.step == "before":
            state = upgrade.before()
            args.state.write_text(json.dumps({"outputs": outputs, **asdict(state)}))
        else:
            saved = json.loads(args.state.read_text())
            upgrade.after(UpgradeState(saved["upgraded"], saved["desired_count"], saved["snapshot"]))
    except UpgradeError as error:
        print(f"schema upgrade: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
