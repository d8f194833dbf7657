"""`mlflow gc` on a schedule: a one-container ECS task from the server's image, run in the
server's cluster by an EventBridge Scheduler schedule. Only created with `gc.olderThan` and
`gc.schedule` both set.

The task signs in as the server's database role (gc deletes rows: DML, which that role has)
and uses the server's task role for the bucket (it deletes objects, which that role may and
the bucket policy allows to it only). Its own log group; its execution grant reads only the
server role's password. The command line: components/specs/gc.py, the same as dev's `make gc`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.aws.lib.container import SCRATCH_VOLUME, EcsSecret, gc_container_definition
from components.aws.lib.iam import ECS_TASKS, attach, execution_policy
from components.aws.lib.policies import document, service_trust, statement
from components.aws.lib.providers import AwsContext
from components.aws.lib.secrets import SecretRef
from components.config.aws import AwsGcSettings
from components.specs.gc import GcSpec

SCHEDULER = "scheduler.amazonaws.com"
# gc imports MLflow and walks the deleted runs one by one: a quarter of a server task is plenty.
CPU = 512
MEMORY_MIB = 2048
# A run that could not start (capacity, throttling) is retried for an hour, then dropped: the
# next scheduled run collects what this one would have.
MAXIMUM_EVENT_AGE_SECONDS = 3600
MAXIMUM_RETRY_ATTEMPTS = 3


def gc_log_group_prefix(stack: str) -> str:
    """What the name of gc's log group starts with (AWS appends a unique part)."""
    return f"/mlflow/{stack}/gc-"


def scheduler_trust(ctx: AwsContext) -> pulumi.Output[str]:
    """EventBridge Scheduler, for schedules of this account only (the confused-deputy guard the
    Scheduler user guide gives: aws:SourceAccount, and the schedules' ARN)."""
    return service_trust(SCHEDULER, ctx.account_id, ctx.arn("scheduler", "schedule/*"))


@dataclass(frozen=True)
class GarbageCollectorArgs:
    settings: AwsGcSettings
    ctx: AwsContext
    # Built from the stores' endpoints with components.specs.gc.gc_spec().
    spec: pulumi.Output[GcSpec]
    # repository@sha256:..., the server's image.
    image: pulumi.Input[str]
    repository_arn: pulumi.Input[str]
    # Env name -> reference; must cover spec.secret_env, and the grant is made of exactly these.
    secrets: Mapping[str, SecretRef]
    execution_role: aws.iam.Role
    task_role: aws.iam.Role
    logs_key_arn: pulumi.Input[str]
    secrets_key_arn: pulumi.Input[str]
    log_retention_days: int
    # The server's cluster: its Fargate storage key encrypts gc's ephemeral storage too.
    cluster_arn: pulumi.Input[str]
    subnet_ids: Sequence[pulumi.Input[str]]
    # The server tasks' group: the same way to the database, the bucket and the endpoints.
    security_group_id: pulumi.Input[str]


class GarbageCollector(pulumi.ComponentResource):
    task_definition_arn: pulumi.Output[str]

    def __init__(self, name: str, args: GarbageCollectorArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlflow-platform:aws:GarbageCollector", name, None, opts)
        ctx, settings, secrets = args.ctx, args.settings, args.secrets
        if settings.older_than is None or settings.schedule is None:
            raise ValueError("gc needs gc.olderThan and gc.schedule")
        child = pulumi.ResourceOptions(parent=self)
        log_group = aws.cloudwatch.LogGroup(
            name,
            aws.cloudwatch.LogGroupArgs(
                name_prefix=gc_log_group_prefix(ctx.stack),
                retention_in_days=args.log_retention_days,
                kms_key_id=args.logs_key_arn,
            ),
            opts=child,
        )
        exec_policy = attach(
            f"{name}-execution",
            args.execution_role,
            execution_policy(
                repository_arn=args.repository_arn,
                log_group_arn=log_group.arn,
                secrets=secrets,
                secrets_key_arn=args.secrets_key_arn,
                region=ctx.region,
            ),
            child,
        )
        secret_names = sorted(secrets)

        def definitions_json(values: list) -> str:
            spec, image, log_group_name, resolved = values[0], values[1], values[2], values[3:]
            ecs_secrets: dict[str, EcsSecret] = dict(zip(secret_names, resolved, strict=True))
            return json.dumps([
                gc_container_definition(spec, image=image, secrets=ecs_secrets, log_group=log_group_name,
                                        region=ctx.region)
            ])  # fmt: skip

        definitions = pulumi.Output.all(
            args.spec, args.image, log_group.name, *[secrets[k].resolved() for k in secret_names]
        ).apply(definitions_json)
        family = f"mlflow-{ctx.stack}-gc"
        task_definition = aws.ecs.TaskDefinition(
            name,
            aws.ecs.TaskDefinitionArgs(
                family=family,
                requires_compatibilities=["FARGATE"],
                network_mode="awsvpc",
                cpu=str(CPU),
                memory=str(MEMORY_MIB),
                runtime_platform=aws.ecs.TaskDefinitionRuntimePlatformArgs(
                    operating_system_family="LINUX", cpu_architecture="X86_64"
                ),
                volumes=[aws.ecs.TaskDefinitionVolumeArgs(name=SCRATCH_VOLUME)],
                execution_role_arn=args.execution_role.arn,
                task_role_arn=args.task_role.arn,
                container_definitions=definitions,
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[exec_policy]),
        )
        # RunTask of this family in this cluster, and handing the task its two roles: nothing else.
        scheduler_role = aws.iam.Role(
            f"{name}-scheduler",
            aws.iam.RoleArgs(
                description="EventBridge Scheduler: start the MLflow gc task",
                assume_role_policy=scheduler_trust(ctx),
                max_session_duration=3600,
            ),
            opts=child,
        )
        scheduler_policy = attach(
            f"{name}-scheduler",
            scheduler_role,
            document(
                statement("RunTheGcTask", ["ecs:RunTask"], [ctx.arn("ecs", f"task-definition/{family}:*")],
                          Condition={"ArnEquals": {"ecs:cluster": args.cluster_arn}}),
                statement("PassItsRoles", ["iam:PassRole"], [args.execution_role.arn, args.task_role.arn],
                          Condition={"StringEquals": {"iam:PassedToService": ECS_TASKS}}),
            ),
            child,
        )  # fmt: skip
        aws.scheduler.Schedule(
            name,
            aws.scheduler.ScheduleArgs(
                description=f"mlflow gc --older-than {settings.older_than}",
                schedule_expression=settings.schedule,
                schedule_expression_timezone="UTC",
                flexible_time_window=aws.scheduler.ScheduleFlexibleTimeWindowArgs(mode="OFF"),
                target=aws.scheduler.ScheduleTargetArgs(
                    arn=args.cluster_arn,
                    role_arn=scheduler_role.arn,
                    ecs_parameters=aws.scheduler.ScheduleTargetEcsParametersArgs(
                        task_definition_arn=task_definition.arn,
                        task_count=1,
                        launch_type="FARGATE",
                        platform_version="LATEST",
                        network_configuration=aws.scheduler.ScheduleTargetEcsParametersNetworkConfigurationArgs(
                            subnets=list(args.subnet_ids),
                            security_groups=[args.security_group_id],
                            assign_public_ip=False,
                        ),
                    ),
                    retry_policy=aws.scheduler.ScheduleTargetRetryPolicyArgs(
                        maximum_event_age_in_seconds=MAXIMUM_EVENT_AGE_SECONDS,
                        maximum_retry_attempts=MAXIMUM_RETRY_ATTEMPTS,
                    ),
                ),
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[scheduler_policy]),
        )
        self.task_definition_arn = task_definition.arn
        self.register_outputs({"taskDefinitionArn": task_definition.arn, "logGroup": log_group.name})
