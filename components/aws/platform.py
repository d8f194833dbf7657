"""The prod stack: wires network, stores, registry, load balancer and tracking server together.

Everything is validated (AwsSettings) before this runs; every resource below it uses the explicit
providers of `make_context`.
"""

from __future__ import annotations

import pulumi

from components.aws.artifact_store import ArtifactStore, ArtifactStoreArgs
from components.aws.auth import BasicAuthCredentials, BasicAuthCredentialsArgs
from components.aws.backup import BackupPlan, BackupPlanArgs, backup_role
from components.aws.encryption_keys import EncryptionKeys, EncryptionKeysArgs
from components.aws.garbage_collector import GarbageCollector, GarbageCollectorArgs, gc_log_group_prefix
from components.aws.job_queue import JobQueue, JobQueueArgs
from components.aws.lib import kms
from components.aws.lib.iam import attach, task_service_role
from components.aws.lib.providers import AwsContext, make_context
from components.aws.lib.secrets import SecretRef
from components.aws.load_balancer import LoadBalancer, LoadBalancerArgs
from components.aws.log_archive import LogArchive, LogArchiveArgs, LoggedBucket
from components.aws.metadata_store import MetadataStore, MetadataStoreArgs, rds_log_group_prefix
from components.aws.monitoring import Monitoring, MonitoringArgs
from components.aws.network import InterfaceEndpoints, InterfaceEndpointsArgs, Network, NetworkArgs
from components.aws.registry import ImageRegistry, ImageRegistryArgs
from components.aws.security_groups import SecurityGroups, SecurityGroupsArgs
from components.aws.tracking_server import TrackingServer, TrackingServerArgs, container_log_group_prefix
from components.aws.web_firewall import WebFirewall, WebFirewallArgs, waf_log_group_prefix
from components.config import AwsSettings
from components.config.aws import DEPLOY_ROLE_NAME
from components.outputs import PlatformOutputs
from components.specs.endpoints import ArtifactEndpoint, DatabaseEndpoint, JobQueueEndpoint
from components.specs.gc import gc_secret_names, gc_spec
from components.specs.mlflow_server import (
    ServerShape,
    ServerSpec,
    mlflow_server_spec,
    server_shape,
)
from components.specs.origins import load_balancer_origins
from images.mlflow import server_contract as contract

# uvicorn keeps idle connections longer than the ALB does, so the ALB always closes first (no 502s).
KEEP_ALIVE_MARGIN_SECONDS = 15


def server_spec(settings: AwsSettings, shape: ServerShape, database: DatabaseEndpoint,
                artifacts: ArtifactEndpoint, job_queue: JobQueueEndpoint | None = None) -> ServerSpec:  # fmt: skip
    """The MLflow server as the prod tasks run it: the same spec function as the Docker stack,
    built for `shape` (what the task, the target group and the security groups are laid out for)."""
    return mlflow_server_spec(
        settings.tracking,
        database,
        artifacts,
        port=shape.port,
        scratch_dir=shape.scratch_dir,
        keep_alive_seconds=settings.load_balancer.idle_timeout_seconds + KEEP_ALIVE_MARGIN_SECONDS,
        app_name=contract.BASIC_AUTH_APP if settings.auth.mode == "basic-auth" else contract.PLATFORM_APP,
        auth_admin_username=settings.auth.admin_username,
        # basic-auth: the declared users and roles, applied at every task's boot.
        access=settings.auth if settings.auth.mode == "basic-auth" else None,
        public_origins=load_balancer_origins(settings.load_balancer.domain_name),
        # A rolling deploy keeps the old tasks writing: servers never migrate, the one-off
        # upgrade task does, with every server stopped (deploy/aws/upgrade.py).
        schema_upgrades=contract.SCHEMA_REQUIRE_CURRENT,
        job_queue=job_queue,
    )


def operator_roles(settings: AwsSettings, ctx: AwsContext) -> list[pulumi.Input[str]]:
    """Who besides the server may touch artifacts: configured roles, else this account's deploy role."""
    if settings.artifact_store.operator_role_arns is not None:
        return list(settings.artifact_store.operator_role_arns)
    return [ctx.arn("iam", f"role/{DEPLOY_ROLE_NAME}", region=False)]


def log_group_prefixes(settings: AwsSettings, stack: str) -> list[str]:
    """The log groups the logs key encrypts: the server's, RDS's, WAF's, and gc's when it runs."""
    prefixes = [container_log_group_prefix(stack), rds_log_group_prefix(stack), waf_log_group_prefix(stack)]
    return prefixes + [gc_log_group_prefix(stack)] if settings.gc.enabled else prefixes


class AwsPlatform(pulumi.ComponentResource):
    outputs: PlatformOutputs

    def __init__(self, name: str, settings: AwsSettings, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlflow-platform:aws:Platform", name, None, opts)
        ctx = make_context(name, settings, self)
        # The providers, once: every component below and its children inherit them.
        child = ctx.child(self)
        basic_auth = settings.auth.mode == "basic-auth"
        # Port, health check and scratch dir: what does not depend on where the stores are.
        shape = server_shape()

        # One key per purpose (docs/aws.md, "KMS keys"); the images', the artifacts' and the tasks'
        # storage keys belong to their components.
        log_groups = [container_log_group_prefix(ctx.stack), rds_log_group_prefix(ctx.stack),
                      waf_log_group_prefix(ctx.stack)]  # fmt: skip
        # The key the database was created with, under its first name (`platform`): an instance's
        # key cannot change without replacing it. It keeps CloudWatch Logs' statement while log
        # events it encrypted before the logs key existed are retained (docs/aws.md).
        database_key = kms.key(
            f"{name}-platform", ctx, "database", "RDS storage and Performance Insights", child,
            kms.logs_may_use(ctx, log_groups, sid="CloudWatchLogsReadsWhatItEncryptedBefore"),
        )  # fmt: skip
        logs_key = kms.key(
            f"{name}-logs", ctx, "logs", "CloudWatch log groups", child,
            kms.logs_may_use(ctx, log_group_prefixes(settings, ctx.stack)),
        )  # fmt: skip
        secrets_key = kms.key(f"{name}-secrets", ctx, "secrets", "Secrets Manager secrets", child)
        execution_role = task_service_role(f"{name}-execution", "MLflow tasks: ECS pulls, secrets, logs", ctx, child)
        task_role = task_service_role(f"{name}-task", "MLflow server: the artifact bucket", ctx, child)
        # AWS Backup reads (and restores) objects: the bucket policy must name its role.
        backups = backup_role(f"{name}-backup", ctx, child) if settings.backup.enabled else None
        artifacts = ArtifactStore(
            f"{name}-artifacts",
            ArtifactStoreArgs(settings=settings.artifact_store, ctx=ctx, accessor_role_arn=task_role.arn,
                              operator_role_arns=[*operator_roles(settings, ctx),
                                                  *([backups.arn] if backups else [])]),
            child,
        )  # fmt: skip
        logs = LogArchive(
            f"{name}-access",
            LogArchiveArgs(logs=settings.logs, ctx=ctx, logged_buckets=[
                LoggedBucket(key="artifacts", bucket=artifacts.bucket_name, arn=artifacts.bucket_arn)
            ]),
            child,
        )  # fmt: skip

        # The S3 gateway endpoint reaches the artifact bucket (and ECR's layers) only.
        network = Network(
            name,
            NetworkArgs(
                settings=settings.aws.network, ctx=ctx, log_archive=logs, endpoint_bucket_arns=[artifacts.bucket_arn]
            ),
            child,
        )
        private_endpoints = settings.aws.network.interface_endpoints and network.s3_prefix_list_id is not None
        groups = SecurityGroups(
            name,
            SecurityGroupsArgs(
                vpc_id=network.vpc_id, ingress_cidrs=settings.load_balancer.ingress_cidrs, server_port=shape.port,
                sign_in_at_load_balancer=settings.auth.mode in ("oidc", "cognito"),
                s3_prefix_list_id=network.s3_prefix_list_id if private_endpoints else None,
                database_proxy=settings.database.proxy, job_queue=settings.tracking.job_execution,
            ),
            child,
        )  # fmt: skip
        if groups.endpoints_id is not None:
            InterfaceEndpoints(
                f"{name}-endpoints",
                InterfaceEndpointsArgs(ctx=ctx, vpc_id=network.vpc_id, subnet_ids=network.private_subnet_ids,
                                       security_group_id=groups.endpoints_id),
                child,
            )  # fmt: skip

        task_policy = attach(f"{name}-task-artifacts", task_role, artifacts.access_policy(), child)
        database = MetadataStore(
            f"{name}-db",
            MetadataStoreArgs(
                settings=settings.database,
                ctx=ctx,
                subnet_ids=network.private_subnet_ids,
                security_group_id=groups.database_id,
                proxy_security_group_id=groups.database_proxy_id,
                storage_key_arn=database_key.arn,
                secrets_key_arn=secrets_key.arn,
                logs_key_arn=logs_key.arn,
                log_retention_days=settings.logs.retention_days,
                # Only without the proxy: then the instance must take the servers' worst case.
                max_connections=settings.connection_budget().total,
            ),
            child,
        )
        # Every secret the tasks are handed, by env name: the container's `secrets` and the
        # execution role's grant are both made of this one map.
        keys = EncryptionKeys(f"{name}-encryption", EncryptionKeysArgs(kms_key_arn=secrets_key.arn), child)
        secrets: dict[str, SecretRef] = {**database.secrets, **artifacts.secrets, **keys.secrets}
        credentials = None
        if basic_auth:
            credentials = BasicAuthCredentials(
                f"{name}-auth", BasicAuthCredentialsArgs(settings=settings.auth, kms_key_arn=secrets_key.arn), child
            )
            secrets.update(credentials.secrets)
        queue = None
        if settings.tracking.job_execution:
            assert groups.job_queue_id is not None
            queue = JobQueue(
                f"{name}-jobs",
                JobQueueArgs(settings=settings.job_queue, ctx=ctx, subnet_ids=network.private_subnet_ids,
                             security_group_id=groups.job_queue_id,
                             storage_key_arn=kms.key(f"{name}-job-queue", ctx, "job-queue",
                                                     "ElastiCache job queue at rest", child).arn,
                             secrets_key_arn=secrets_key.arn),
                child,
            )  # fmt: skip
            secrets.update(queue.secrets)

        registry = ImageRegistry(f"{name}-mlflow", ImageRegistryArgs(ctx=ctx, settings=settings.registry), child)
        web_acl_arn: pulumi.Input[str] | None = settings.load_balancer.waf_acl_arn
        if web_acl_arn is None and settings.load_balancer.waf.enabled:
            web_acl_arn = WebFirewall(
                f"{name}-waf",
                WebFirewallArgs(settings=settings.load_balancer.waf, ctx=ctx, kms_key_arn=logs_key.arn,
                                log_retention_days=settings.logs.retention_days,
                                sign_in_at_load_balancer=settings.auth.mode in ("oidc", "cognito")),
                child,
            ).web_acl_arn  # fmt: skip
        balancer = LoadBalancer(
            name,
            LoadBalancerArgs(
                settings=settings.load_balancer,
                auth=settings.auth,
                vpc_id=network.vpc_id,
                subnet_ids=network.public_subnet_ids,
                security_group_id=groups.load_balancer_id,
                server=shape,
                log_archive=logs,
                web_acl_arn=web_acl_arn,
            ),
            child,
        )
        spec = pulumi.Output.all(database.endpoint, artifacts.endpoint, queue.endpoint if queue else None).apply(
            lambda endpoints: server_spec(settings, shape, endpoints[0], endpoints[1], endpoints[2])
        )
        server = TrackingServer(
            name,
            TrackingServerArgs(
                tracking=settings.tracking,
                tasks=settings.tasks,
                logs=settings.logs,
                ctx=ctx,
                shape=shape,
                spec=spec,
                image=registry.image_digest,
                repository_arn=registry.repository_arn,
                secrets=secrets,
                execution_role=execution_role,
                task_role=task_role,
                logs_key_arn=logs_key.arn,
                secrets_key_arn=secrets_key.arn,
                subnet_ids=network.private_subnet_ids,
                security_group_id=groups.tasks_id,
                target_group_arn=balancer.target_group_arn,
                drain_seconds=balancer.deregistration_delay_seconds,
                request_count_label=balancer.resource_label,
                # Tasks need their bucket grant, and the target group must belong to a listener.
                ready_before_service=[task_policy, balancer.https_listener],
                image_resources=registry.build_resources,
            ),
            child,
        )
        if backups is not None:
            BackupPlan(
                f"{name}-backup",
                BackupPlanArgs(settings=settings.backup, ctx=ctx, role=backups,
                               resource_arns=[database.instance_arn, artifacts.bucket_arn]),
                child,
            )  # fmt: skip
        if settings.gc.enabled:
            older_than = settings.gc.older_than
            assert older_than is not None
            GarbageCollector(
                f"{name}-gc",
                GarbageCollectorArgs(
                    settings=settings.gc, ctx=ctx,
                    spec=pulumi.Output.all(database.endpoint, artifacts.endpoint).apply(
                        lambda endpoints: gc_spec(older_than, endpoints[0], endpoints[1], shape.scratch_dir)),
                    image=registry.image_digest, repository_arn=registry.repository_arn,
                    # The bucket is reached with the task role, not keys.
                    secrets={k: secrets[k] for k in gc_secret_names(static_s3_credentials=False)},
                    execution_role=execution_role, task_role=task_role,
                    logs_key_arn=logs_key.arn, secrets_key_arn=secrets_key.arn,
                    log_retention_days=settings.logs.retention_days, cluster_arn=server.cluster_arn,
                    subnet_ids=network.private_subnet_ids, security_group_id=groups.tasks_id,
                ),
                child,
            )  # fmt: skip
        monitoring = Monitoring(
            f"{name}-monitoring",
            MonitoringArgs(settings=settings, ctx=ctx, load_balancer=balancer.arn_suffix,
                           target_group=balancer.target_group_arn_suffix, cluster=server.cluster_name,
                           service=server.service_name, db_instance=database.instance_identifier,
                           bucket=artifacts.bucket_name),
            child,
        )  # fmt: skip
        self.outputs = PlatformOutputs(
            tracking_uri=balancer.url,
            username=pulumi.Output.from_input(credentials.username) if credentials else None,
            password=credentials.password if credentials else None,
            users=credentials.users if credentials else None,
            schema_upgrade=pulumi.Output.all(
                database_instance=database.instance_identifier, server=server.schema_upgrade
            ).apply(lambda values: {**values["server"], "dbInstanceIdentifier": values["database_instance"]}),
            alarm_topic_arn=monitoring.topic_arn,
        )
        self.register_outputs({"trackingUri": balancer.url, "albDnsName": balancer.dns_name})
