"""The prod stack: wires network, stores, registry, load balancer and tracking server together.

Everything is validated (AwsSettings) before this runs; every resource below it uses the explicit
providers of `make_context`.
"""

from __future__ import annotations

import pulumi

from components.aws.artifact_store import ArtifactStore
from components.aws.auth import BasicAuthCredentials
from components.aws.iam import attach, task_service_role
from components.aws.kms import platform_key
from components.aws.load_balancer import LoadBalancer
from components.aws.log_archive import LogArchive
from components.aws.metadata_store import MetadataStore
from components.aws.network import InterfaceEndpoints, Network
from components.aws.providers import make_context
from components.aws.registry import ImageRegistry
from components.aws.security_groups import POSTGRES_PORT, SecurityGroups
from components.aws.tracking_server import TrackingServer
from components.config import AwsSettings
from components.config.aws import DEPLOY_ROLE_NAME
from components.specs.image_layout import RDS_CA_BUNDLE_PATH
from components.outputs import PlatformOutputs
from components.specs.endpoints import ArtifactEndpoint, DatabaseEndpoint
from images.mlflow import server_contract as contract
from components.specs.mlflow_server import SERVER_PORT, ServerSpec, database_connections_needed, mlflow_server_spec

# The RDS CA bundle inside the image: the server certificate is verified, not just encrypted.
HEALTH_PATH = contract.HEALTH_PATH
# uvicorn keeps idle connections longer than the ALB does, so the ALB always closes first (no 502s).
KEEP_ALIVE_MARGIN_SECONDS = 15


def server_spec(settings: AwsSettings, db_host: str, bucket: str) -> ServerSpec:
    """The MLflow server as the prod tasks run it: the same spec function as the Docker stack."""
    return mlflow_server_spec(
        settings.tracking,
        DatabaseEndpoint(
            host=db_host,
            port=POSTGRES_PORT,
            name=settings.database.name,
            user=settings.database.username,
            sslmode="verify-full",
            sslrootcert=RDS_CA_BUNDLE_PATH,
        ),
        ArtifactEndpoint(bucket=bucket, region=settings.aws.region),
        port=SERVER_PORT,
        keep_alive_seconds=settings.load_balancer.idle_timeout_seconds + KEEP_ALIVE_MARGIN_SECONDS,
        app_name="basic-auth" if settings.auth.mode == "basic-auth" else None,
        auth_admin_username=settings.auth.admin_username,
    )


def operator_roles(settings: AwsSettings, ctx) -> list[pulumi.Input[str]]:
    """Who besides the server may touch artifacts: configured roles, else this account's deploy role."""
    if settings.artifact_store.operator_role_arns is not None:
        return list(settings.artifact_store.operator_role_arns)
    return [ctx.arn("iam", f"role/{DEPLOY_ROLE_NAME}", region=False)]


class AwsPlatform(pulumi.ComponentResource):
    outputs: PlatformOutputs

    def __init__(self, name: str, settings: AwsSettings, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlflow-platform:aws:Platform", name, None, opts)
        ctx = make_context(name, settings, self)
        child = ctx.child(self)
        basic_auth = settings.auth.mode == "basic-auth"
        # Port and health check do not depend on where the stores are.
        shape = server_spec(settings, "database", "bucket")

        key = platform_key(f"{name}-platform", ctx, child)
        logs = LogArchive(f"{name}-access", settings, ctx, child)
        execution_role = task_service_role(f"{name}-execution", "MLflow tasks: ECS pulls, secrets, logs", ctx, child)
        task_role = task_service_role(f"{name}-task", "MLflow server: the artifact bucket", ctx, child)
        artifacts = ArtifactStore(f"{name}-artifacts", settings.artifact_store, ctx, task_role.arn, child,
                                  operator_role_arns=operator_roles(settings, ctx))

        # The S3 gateway endpoint reaches the artifact bucket (and ECR's layers) only.
        network = Network(name, settings.aws.network, ctx, logs, child, endpoint_bucket_arns=[artifacts.bucket_arn])
        private_endpoints = settings.aws.network.interface_endpoints and network.s3_prefix_list_id is not None
        groups = SecurityGroups(
            name, network.vpc_id, settings.load_balancer.ingress_cidrs, shape.port, child,
            sign_in_at_load_balancer=settings.auth.mode in ("oidc", "cognito"),
            s3_prefix_list_id=network.s3_prefix_list_id if private_endpoints else None,
        )  # fmt: skip
        if private_endpoints:
            InterfaceEndpoints(f"{name}-endpoints", ctx, vpc_id=network.vpc_id, subnet_ids=network.private_subnet_ids,
                               security_group_id=groups.endpoints_id, opts=child)  # fmt: skip

        task_policy = attach(f"{name}-task-artifacts", task_role, artifacts.access_policy(ctx.region), child)
        database = MetadataStore(
            f"{name}-db",
            settings.database,
            ctx,
            subnet_ids=network.private_subnet_ids,
            security_group_id=groups.database_id,
            kms_key_arn=key.arn,
            log_retention_days=settings.logs.retention_days,
            max_connections=database_connections_needed(settings.tracking.workers, settings.tasks.max_count),
            opts=child,
        )
        secrets = {contract.DB_PASSWORD: database.password_value_from}
        secret_arns = [database.secret_arn]
        credentials = None
        if basic_auth:
            credentials = BasicAuthCredentials(f"{name}-auth", settings.auth, ctx, key.arn, child)
            secrets.update(credentials.ecs_secrets())
            secret_arns.append(credentials.secret_arn)

        registry = ImageRegistry(f"{name}-mlflow", ctx, child)
        balancer = LoadBalancer(
            name,
            settings.load_balancer,
            settings.auth,
            ctx,
            vpc_id=network.vpc_id,
            subnet_ids=network.public_subnet_ids,
            security_group_id=groups.load_balancer_id,
            server_port=shape.port,
            health=shape.health,
            health_path=HEALTH_PATH,
            log_archive=logs,
            opts=child,
        )
        spec = pulumi.Output.all(database.address, artifacts.bucket_name).apply(
            lambda values: server_spec(settings, values[0], values[1])
        )
        TrackingServer(
            name,
            settings,
            ctx,
            spec=spec,
            image=registry.image_digest,
            repository_arn=registry.repository_arn,
            secrets=secrets,
            secret_arns=secret_arns,
            execution_role=execution_role,
            task_role=task_role,
            kms_key_arn=key.arn,
            subnet_ids=network.private_subnet_ids,
            security_group_id=groups.tasks_id,
            target_group_arn=balancer.target_group_arn,
            drain_seconds=balancer.deregistration_delay_seconds,
            # The first start migrates the schema before /health answers.
            start_grace_seconds=shape.health.start_period_seconds + 60,
            request_count_label=balancer.resource_label,
            # Tasks need their bucket grant, and the target group must belong to a listener.
            ready_before_service=[task_policy, balancer.https_listener],
            opts=child,
        )
        self.outputs = PlatformOutputs(
            tracking_uri=balancer.url,
            username=pulumi.Output.from_input(credentials.username) if credentials else None,
            password=credentials.password if credentials else None,
        )
        self.register_outputs({"trackingUri": balancer.url, "albDnsName": balancer.dns_name})
