"""The MLflow tracking server on ECS Fargate: cluster, task definition, service and autoscaling.

It consumes what the others expose: an image digest, a spec built from the stores' endpoints,
secret ARNs, two roles, subnets, a security group and a target group.
"""

from __future__ import annotations

import json
from typing import Mapping

import pulumi
import pulumi_aws as aws

from components.aws.container import CONTAINER_NAME, SCRATCH_VOLUME, container_definition
from components.aws.iam import attach, execution_policy
from components.aws.providers import AwsContext
from components.config.aws import AwsSettings
from components.specs.mlflow_server import ServerSpec

# Beyond starting and draining tasks: image pulls, placement, a slow health check or two.
ROLLOUT_MARGIN_SECONDS = 15 * 60


def rollout_timeout(start_grace_seconds: int, drain_seconds: int) -> str:
    """How long `pulumi up` may wait for the service to be steady (the provider's default is 20 min).

    A rolling deploy starts new tasks (up to their health grace period), then drains the old ones
    for up to the target group's deregistration delay, so one long upload can hold it that long.
    """
    minutes = -(-(start_grace_seconds + drain_seconds + ROLLOUT_MARGIN_SECONDS) // 60)
    return f"{minutes}m"


class TrackingServer(pulumi.ComponentResource):
    service_name: pulumi.Output[str]
    cluster_name: pulumi.Output[str]

    def __init__(
        self,
        name: str,
        settings: AwsSettings,
        ctx: AwsContext,
        *,
        spec: pulumi.Output[ServerSpec],
        image: pulumi.Input[str],
        repository_arn: pulumi.Input[str],
        secrets: Mapping[str, pulumi.Input[str]],
        secret_arns: list[pulumi.Input[str]],
        execution_role: aws.iam.Role,
        task_role: aws.iam.Role,
        kms_key_arn: pulumi.Input[str],
        subnet_ids: list[pulumi.Input[str]],
        security_group_id: pulumi.Input[str],
        target_group_arn: pulumi.Input[str],
        drain_seconds: int,
        start_grace_seconds: int,
        request_count_label: pulumi.Input[str],
        ready_before_service: list[pulumi.Resource],
        opts: pulumi.ResourceOptions,
    ):
        super().__init__("mlflow-platform:aws:TrackingServer", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        tasks = settings.tasks

        log_group = aws.cloudwatch.LogGroup(
            name,
            aws.cloudwatch.LogGroupArgs(
                # A prefix, AWS appending a unique part: a group of the same name left by an earlier
                # stack (or re-created by a task still writing during a destroy) cannot collide.
                name_prefix=f"/mlflow/{ctx.stack}/tracking-server-",
                retention_in_days=settings.logs.retention_days,
                kms_key_id=kms_key_arn,
            ),
            opts=child,
        )
        # Before any task starts: pull, fetch these secrets, write this log group. Nothing more.
        exec_policy = attach(
            f"{name}-execution",
            execution_role,
            execution_policy(
                repository_arn=repository_arn,
                log_group_arn=log_group.arn,
                secret_arns=secret_arns,
                secrets_key_arn=kms_key_arn,
                region=ctx.region,
            ),
            child,
        )
        cluster = aws.ecs.Cluster(
            name,
            aws.ecs.ClusterArgs(settings=[aws.ecs.ClusterSettingArgs(name="containerInsights", value="enabled")]),
            opts=child,
        )

        secret_names = sorted(secrets)
        definitions = pulumi.Output.all(spec, image, log_group.name, *[secrets[k] for k in secret_names]).apply(
            lambda values: json.dumps([
                container_definition(
                    values[0],
                    image=values[1],
                    log_group=values[2],
                    secrets=dict(zip(secret_names, values[3:])),
                    region=ctx.region,
                )
            ])  # fmt: skip
        )
        task_definition = aws.ecs.TaskDefinition(
            name,
            aws.ecs.TaskDefinitionArgs(
                family=f"mlflow-{ctx.stack}",
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
                execution_role_arn=execution_role.arn,
                task_role_arn=task_role.arn,
                container_definitions=definitions,
            ),
            opts=child,
        )
        service = aws.ecs.Service(
            name,
            aws.ecs.ServiceArgs(
                cluster=cluster.arn,
                task_definition=task_definition.arn,
                launch_type="FARGATE",
                platform_version="LATEST",
                desired_count=settings.tracking.replicas,
                network_configuration=aws.ecs.ServiceNetworkConfigurationArgs(
                    subnets=subnet_ids, security_groups=[security_group_id], assign_public_ip=False
                ),
                load_balancers=[
                    aws.ecs.ServiceLoadBalancerArgs(
                        target_group_arn=target_group_arn,
                        container_name=CONTAINER_NAME,
                        container_port=spec.apply(lambda s: s.port),
                    )
                ],
                # A deployment whose tasks never turn healthy stops and rolls back by itself.
                deployment_circuit_breaker=aws.ecs.ServiceDeploymentCircuitBreakerArgs(enable=True, rollback=True),
                deployment_minimum_healthy_percent=100,
                deployment_maximum_percent=200,
                # The first start migrates the schema before /health answers.
                health_check_grace_period_seconds=start_grace_seconds,
                availability_zone_rebalancing="ENABLED",
                enable_execute_command=False,
                enable_ecs_managed_tags=True,
                propagate_tags="SERVICE",
                wait_for_steady_state=tasks.wait_for_steady_state,
            ),
            opts=pulumi.ResourceOptions(
                parent=self,
                depends_on=[exec_policy, *ready_before_service],
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

        resource_id = pulumi.Output.concat("service/", cluster.name, "/", service.name)
        target = aws.appautoscaling.Target(
            name,
            aws.appautoscaling.TargetArgs(
                service_namespace="ecs",
                scalable_dimension="ecs:service:DesiredCount",
                resource_id=resource_id,
                min_capacity=settings.tracking.replicas,
                max_capacity=tasks.max_count,
            ),
            opts=child,
        )
        for metric, value, label in (
            ("ECSServiceAverageCPUUtilization", tasks.target_cpu_percent, None),
            ("ALBRequestCountPerTarget", tasks.target_requests_per_task, request_count_label),
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
        self.service_name = service.name
        self.register_outputs({"cluster": cluster.name, "service": service.name, "logGroup": log_group.name})
