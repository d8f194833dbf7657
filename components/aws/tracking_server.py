"""The MLflow tracking server on ECS Fargate: cluster, task definition, service and autoscaling.

It consumes what the others expose: an image digest, the server's shape and a spec built from the
stores' endpoints, the stores' secret references, two roles, subnets, a security group and a
target group.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import cast

import pulumi
import pulumi_aws as aws

from components.aws.lib import kms
from components.aws.lib.container import (
    CONTAINER_NAME,
    SCRATCH_VOLUME,
    EcsSecret,
    audit_sidecar_definition,
    container_definition,
    one_off_container_definition,
)
from components.aws.lib.iam import attach, execution_policy
from components.aws.lib.providers import AwsContext
from components.aws.lib.secrets import SecretRef
from components.config.aws import AwsLogSettings, AwsTaskSettings
from components.config.base import TrackingSettings
from components.specs.health import HealthCheck
from components.specs.mlflow_server import ServerShape, ServerSpec, periodic_tasks_owner
from images.mlflow import server_contract as contract

# Beyond starting and draining tasks: image pulls, placement, a slow health check or two.
ROLLOUT_MARGIN_SECONDS = 15 * 60
# Beyond the container's own start period, before the load balancer's failed checks count.
HEALTH_GRACE_MARGIN_SECONDS = 60


def container_log_group_prefix(stack: str) -> str:
    """What the name of the server's log group starts with (AWS appends a unique part)."""
    return f"/mlflow/{stack}/tracking-server-"


def cluster_name_pattern(name: str) -> str:
    """The names Pulumi gives the cluster of resource name `name`: `name`, a hyphen, random characters."""
    return f"{name}-*"


def rollout_timeout(start_grace_seconds: int, drain_seconds: int) -> str:
    """How long `pulumi up` may wait for the service to be steady (the provider's default is 20 min).

    A rolling deploy starts new tasks (up to their health grace period), then drains the old ones
    for up to the target group's deregistration delay, so one long upload can hold it that long.
    """
    minutes = -(-(start_grace_seconds + drain_seconds + ROLLOUT_MARGIN_SECONDS) // 60)
    return f"{minutes}m"


def health_grace_seconds(health: HealthCheck) -> int:
    """How long the service ignores a new task's failed load-balancer health checks: the first
    start migrates the schema before /health answers."""
    return health.start_period_seconds + HEALTH_GRACE_MARGIN_SECONDS


@dataclass(frozen=True)
class TrackingServerArgs:
    tracking: TrackingSettings
    tasks: AwsTaskSettings
    logs: AwsLogSettings
    ctx: AwsContext
    # What the task is laid out from, known before the stores exist: port, health check, scratch dir.
    shape: ServerShape
    # What depends on the stores (their addresses): command and environment. Built for `shape`.
    spec: pulumi.Output[ServerSpec]
    # repository@sha256:..., never a tag.
    image: pulumi.Input[str]
    repository_arn: pulumi.Input[str]
    # Env name -> where ECS reads it; the execution role may read these secrets and no other.
    secrets: Mapping[str, SecretRef]
    execution_role: aws.iam.Role
    task_role: aws.iam.Role
    # Encrypts the log group.
    logs_key_arn: pulumi.Input[str]
    # Encrypts the secrets the tasks are handed (the execution role decrypts them through Secrets Manager).
    secrets_key_arn: pulumi.Input[str]
    # Private subnets.
    subnet_ids: Sequence[pulumi.Input[str]]
    security_group_id: pulumi.Input[str]
    target_group_arn: pulumi.Input[str]
    # The target group's deregistration delay: how long a task being replaced keeps serving.
    drain_seconds: int
    # "<lb arn suffix>/<target group arn suffix>", for the request-count scaling metric.
    request_count_label: pulumi.Input[str]
    # What must exist before any task starts (its grants, the listener of its target group).
    ready_before_service: Sequence[pulumi.Resource] = ()
    # What builds and pushes `image`: updated alone, with the upgrade task, before an upgrade.
    image_resources: Sequence[pulumi.Resource] = ()


def check_args(args: TrackingServerArgs) -> None:
    """What can be refused before anything is created."""
    unknown = sorted(set(args.secrets) - set(contract.SECRET_NAMES))
    if unknown:
        raise ValueError(
            f"{', '.join(unknown)}: not secrets of the server contract ({', '.join(contract.SECRET_NAMES)})"
        )
    if args.tracking.replicas > args.tasks.max_count:
        raise ValueError(f"{args.tracking.replicas} replicas exceed the autoscaling maximum {args.tasks.max_count}")


def _after(output: pulumi.Output) -> pulumi.Input[pulumi.Resource]:
    """For `depends_on`: the resources `output` comes from (the SDK counts them and skips a None value)."""
    return cast("pulumi.Input[pulumi.Resource]", output.apply(lambda _: None))


# The one-off schema upgrade's log streams, in the server's log group: `schema-upgrade/mlflow/<task id>`.
UPGRADE_STREAM_PREFIX = "schema-upgrade"


class TrackingServer(pulumi.ComponentResource):
    service_name: pulumi.Output[str]
    cluster_name: pulumi.Output[str]
    cluster_arn: pulumi.Output[str]
    # What deploy/aws/upgrade.py needs to stop the service, run the upgrade task and start it again.
    schema_upgrade: pulumi.Output[dict]

    def __init__(self, name: str, args: TrackingServerArgs, opts: pulumi.ResourceOptions | None = None):
        check_args(args)
        super().__init__("mlflow-platform:aws:TrackingServer", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        ctx, tasks, shape, spec, secrets = args.ctx, args.tasks, args.shape, args.spec, args.secrets
        start_grace_seconds, drain_seconds = health_grace_seconds(shape.health), args.drain_seconds

        log_group = aws.cloudwatch.LogGroup(
            name,
            aws.cloudwatch.LogGroupArgs(
                # A prefix, AWS appending a unique part: a group of the same name left by an earlier
                # stack (or re-created by a task still writing during a destroy) cannot collide.
                name_prefix=container_log_group_prefix(ctx.stack),
                retention_in_days=args.logs.retention_days,
                kms_key_id=args.logs_key_arn,
            ),
            opts=child,
        )
        # Who changed what (the audit-log sidecar's lines): kept as long as the config says,
        # apart from the server's own output.
        audit_log_group = aws.cloudwatch.LogGroup(
            f"{name}-audit",
            aws.cloudwatch.LogGroupArgs(
                name_prefix=container_log_group_prefix(ctx.stack) + "audit-",
                retention_in_days=args.logs.audit_retention_days,
                kms_key_id=args.logs_key_arn,
            ),
            opts=child,
        )
        # Before any task starts: pull, fetch these secrets, write these log groups. Nothing more.
        exec_policy = attach(
            f"{name}-execution",
            args.execution_role,
            execution_policy(
                repository_arn=args.repository_arn,
                log_group_arn=log_group.arn,
                secrets=secrets,
                secrets_key_arn=args.secrets_key_arn,
                region=ctx.region,
                extra_log_group_arns=[audit_log_group.arn],
            ),
            child,
        )
        # The tasks' ephemeral storage holds the image and the proxied uploads MLflow spools before
        # copying them to S3: encrypted with a key of its own that only Fargate, for this cluster,
        # may use. The cluster is auto-named `<name>-<random>` (a fixed name would replace it), so
        # the key names it by that pattern; it must exist before the cluster names it.
        storage_key = kms.key(
            f"{name}-task-storage", ctx, "task-storage", "Fargate ephemeral storage of the server tasks", child,
            *kms.fargate_may_use(ctx, cluster_name_pattern(name)),
        )  # fmt: skip
        cluster = aws.ecs.Cluster(
            name,
            aws.ecs.ClusterArgs(
                settings=[aws.ecs.ClusterSettingArgs(name="containerInsights", value="enabled")],
                # An in-place UpdateCluster: tasks started afterwards use the key, running ones keep theirs.
                configuration=aws.ecs.ClusterConfigurationArgs(
                    managed_storage_configuration=aws.ecs.ClusterConfigurationManagedStorageConfigurationArgs(
                        # The key's ARN: Fargate takes no alias (ECS developer guide, fargate-create-storage-key).
                        fargate_ephemeral_storage_kms_key_id=storage_key.arn
                    )
                ),
            ),
            opts=child,
        )

        secret_names = sorted(secrets)

        def definitions_json(values: list, *, periodic_owner: bool = False) -> str:
            built, image, log_group_name, audit_group_name, resolved = (
                values[0],
                values[1],
                values[2],
                values[3],
                values[4:],
            )
            if periodic_owner:
                built = periodic_tasks_owner(built)
            if built.shape != shape:
                # The target group and the service would probe and forward to another port.
                raise ValueError(f"the server spec was built for {built.shape}, the task is laid out for {shape}")
            ecs_secrets: dict[str, EcsSecret] = dict(zip(secret_names, resolved, strict=True))
            return json.dumps([
                container_definition(built, image=image, log_group=log_group_name, secrets=ecs_secrets, region=ctx.region),
                audit_sidecar_definition(built, image=image, log_group=audit_group_name, region=ctx.region),
            ])  # fmt: skip

        def upgrade_definitions_json(values: list) -> str:
            built, image, log_group_name, resolved = values[0], values[1], values[2], values[4:]
            ecs_secrets: dict[str, EcsSecret] = dict(zip(secret_names, resolved, strict=True))
            return json.dumps([
                one_off_container_definition(built, command=contract.UPGRADE_COMMAND, stream_prefix=UPGRADE_STREAM_PREFIX,
                                             image=image, log_group=log_group_name, secrets=ecs_secrets, region=ctx.region)
            ])  # fmt: skip

        inputs = pulumi.Output.all(
            spec, args.image, log_group.name, audit_log_group.name, *[secrets[k].resolved() for k in secret_names]
        )

        def task_definition_args(family: str, definitions: pulumi.Output[str]) -> aws.ecs.TaskDefinitionArgs:
            return aws.ecs.TaskDefinitionArgs(
                family=family,
                requires_compatibilities=["FARGATE"],
                network_mode="awsvpc",
                cpu=str(tasks.cpu),
                memory=str(tasks.memory_mib),
                runtime_platform=aws.ecs.TaskDefinitionRuntimePlatformArgs(
                    operating_system_family="LINUX", cpu_architecture="X86_64"
                ),
                ephemeral_storage=aws.ecs.TaskDefinitionEphemeralStorageArgs(size_in_gib=tasks.ephemeral_storage_gib),
                # A task-local volume on the ephemeral storage: the scratch space of a read-only container.
                volumes=[aws.ecs.TaskDefinitionVolumeArgs(name=SCRATCH_VOLUME)],
                execution_role_arn=args.execution_role.arn,
                task_role_arn=args.task_role.arn,
                container_definitions=definitions,
            )

        task_definition = aws.ecs.TaskDefinition(
            name, task_definition_args(f"mlflow-{ctx.stack}", inputs.apply(definitions_json)), opts=child
        )
        # The one-off schema upgrade (`python -m mlflow_boot upgrade`): the servers' image, env,
        # secrets (the owner's among them), roles and network, run by deploy/aws/upgrade.py with
        # every server stopped. Its own family: registering it never touches the service.
        upgrade_task_definition = aws.ecs.TaskDefinition(
            f"{name}-schema-upgrade",
            task_definition_args(f"mlflow-{ctx.stack}-schema-upgrade", inputs.apply(upgrade_definitions_json)),
            opts=child,
        )

        def service_args(definition: aws.ecs.TaskDefinition, **rollout) -> aws.ecs.ServiceArgs:
            """What the server service and the scheduler share: the cluster, Fargate in the private
            subnets, a rollback when a deployment's tasks never turn healthy, tags, the wait."""
            return aws.ecs.ServiceArgs(
                cluster=cluster.arn,
                task_definition=definition.arn,
                launch_type="FARGATE",
                platform_version="LATEST",
                network_configuration=aws.ecs.ServiceNetworkConfigurationArgs(
                    subnets=list(args.subnet_ids), security_groups=[args.security_group_id], assign_public_ip=False
                ),
                deployment_circuit_breaker=aws.ecs.ServiceDeploymentCircuitBreakerArgs(enable=True, rollback=True),
                enable_execute_command=False,
                enable_ecs_managed_tags=True,
                propagate_tags="SERVICE",
                wait_for_steady_state=tasks.wait_for_steady_state,
                **rollout,
            )

        service = aws.ecs.Service(
            name,
            service_args(
                task_definition,
                desired_count=args.tracking.replicas,
                load_balancers=[
                    aws.ecs.ServiceLoadBalancerArgs(
                        target_group_arn=args.target_group_arn,
                        container_name=CONTAINER_NAME,
                        container_port=shape.port,
                    )
                ],
                deployment_minimum_healthy_percent=100,
                deployment_maximum_percent=200,
                # The first start migrates the schema before /health answers.
                health_check_grace_period_seconds=start_grace_seconds,
                availability_zone_rebalancing="ENABLED",
            ),
            opts=pulumi.ResourceOptions(
                parent=self,
                # Tasks start against stores that exist: the database and the bucket the spec names.
                depends_on=[exec_policy, *args.ready_before_service, _after(spec)],
                # Autoscaling owns the task count once the service exists.
                ignore_changes=["desiredCount"],
                # Waiting for steady state covers draining the old tasks (their uploads) too.
                custom_timeouts=pulumi.CustomTimeouts(
                    create=rollout_timeout(start_grace_seconds, 0),
                    update=rollout_timeout(start_grace_seconds, drain_seconds),
                    delete=rollout_timeout(0, drain_seconds),
                ),
            ),
        )

        self.scheduler_service_name: pulumi.Output[str] | None = None
        if args.tracking.job_execution:
            # The one task that schedules MLflow's periodic tasks (the service's tasks never do):
            # the same server, outside the target group and the autoscaling, its own family.
            scheduler_definition = aws.ecs.TaskDefinition(
                f"{name}-scheduler",
                task_definition_args(
                    f"mlflow-{ctx.stack}-scheduler",
                    inputs.apply(lambda values: definitions_json(values, periodic_owner=True)),
                ),
                opts=child,
            )
            scheduler = aws.ecs.Service(
                f"{name}-scheduler",
                service_args(
                    scheduler_definition,
                    desired_count=1,
                    # Never two at once: a deploy stops the old task before it starts the new one
                    # (ECS's default, 200 %, would run both for a while and schedule twice).
                    deployment_maximum_percent=100,
                    deployment_minimum_healthy_percent=0,
                ),
                opts=pulumi.ResourceOptions(
                    parent=self,
                    depends_on=[exec_policy, *args.ready_before_service, _after(spec)],
                    custom_timeouts=pulumi.CustomTimeouts(
                        create=rollout_timeout(start_grace_seconds, 0), update=rollout_timeout(start_grace_seconds, 0)
                    ),
                ),
            )
            self.scheduler_service_name = scheduler.name

        resource_id = pulumi.Output.concat("service/", cluster.name, "/", service.name)
        target = aws.appautoscaling.Target(
            name,
            aws.appautoscaling.TargetArgs(
                service_namespace="ecs",
                scalable_dimension="ecs:service:DesiredCount",
                resource_id=resource_id,
                min_capacity=args.tracking.replicas,
                max_capacity=tasks.max_count,
            ),
            opts=child,
        )
        for metric, value, label in (
            ("ECSServiceAverageCPUUtilization", tasks.target_cpu_percent, None),
            ("ALBRequestCountPerTarget", tasks.target_requests_per_task, args.request_count_label),
        ):
            aws.appautoscaling.Policy(
                f"{name}-{'cpu' if label is None else 'requests'}",
                aws.appautoscaling.PolicyArgs(
                    policy_type="TargetTrackingScaling",
                    service_namespace=target.service_namespace,
                    scalable_dimension=target.scalable_dimension,
                    resource_id=target.resource_id,
                    target_tracking_scaling_policy_configuration=aws.appautoscaling.PolicyTargetTrackingScalingPolicyConfigurationArgs(
                        target_value=value,
                        predefined_metric_specification=aws.appautoscaling.PolicyTargetTrackingScalingPolicyConfigurationPredefinedMetricSpecificationArgs(
                            predefined_metric_type=metric, resource_label=label
                        ),
                        scale_out_cooldown=60,
                        scale_in_cooldown=300,
                    ),
                ),
                opts=child,
            )
        self.cluster_name = cluster.name
        # Where one-off tasks run (gc): under the cluster's Fargate storage key.
        self.cluster_arn = cluster.arn
        self.service_name = service.name
        scheduler_output = {"schedulerService": self.scheduler_service_name} if self.scheduler_service_name else {}
        self.schema_upgrade = pulumi.Output.all(
            cluster=cluster.arn,
            service=service.name,
            # Stopped with the servers for an upgrade: it writes job rows too.
            **scheduler_output,
            # The family, not one revision's ARN: RunTask then runs its latest ACTIVE revision (ECS
            # RunTask API), the new image's once `pulumi up --target` registered it, even where that
            # targeted update leaves this output as it was.
            taskDefinitionFamily=upgrade_task_definition.family,
            containerName=CONTAINER_NAME,
            subnets=list(args.subnet_ids),
            securityGroups=[args.security_group_id],
            scalableResourceId=target.resource_id,
            logGroup=log_group.name,
            logStreamPrefix=f"{UPGRADE_STREAM_PREFIX}/{CONTAINER_NAME}",
            # `pulumi up --target` these first: the new image and its upgrade task, not the service.
            targets=[*[r.urn for r in args.image_resources], upgrade_task_definition.urn],
        )
        self.register_outputs({"cluster": cluster.name, "service": service.name, "logGroup": log_group.name,
                               "schemaUpgrade": self.schema_upgrade})  # fmt: skip
