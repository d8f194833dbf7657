"""The metadata store: RDS PostgreSQL in private subnets, TLS forced, encrypted, Multi-AZ, backed up.

Two database roles, as on Docker:
- the master user owns the schema. RDS generates its password, keeps it in a secret of its own
  (encrypted with the secrets key) and rotates it; only the servers' boot step reads it, to
  migrate and to create the servers' role. It never passes through Pulumi.
- `contract.SERVER_DB_ROLE`, what every MLflow server signs in as: DML only. Its password is
  generated here and kept in Secrets Manager; the tasks receive references, never values.
Exposes, as the Docker store does, `endpoint` and `secrets` (env name -> reference).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws
import pulumi_random as random

from components.aws.lib.policies import document, service_trust, statement
from components.aws.lib.providers import AwsContext
from components.aws.lib.secrets import SecretRef, json_secret
from components.config.aws import AwsDatabaseSettings
from components.generated import generated_secret
from components.specs.durability import DURABLE_SETTINGS, RDS_SETTABLE
from components.specs.endpoints import DatabaseEndpoint, platform_database
from components.specs.image_layout import RDS_CA_BUNDLE_PATH, SYSTEM_CA_BUNDLE_PATH
from images.mlflow import server_contract as contract

# The CA that signs RDS server certificates; clients verify against the RDS global bundle.
RDS_CA = "rds-ca-rsa2048-g1"
LOG_EXPORTS = ["postgresql", "upgrade"]
# The JSON keys of both credentials secrets (RDS's own secret uses the same two).
USERNAME_KEY = "username"
PASSWORD_KEY = "password"
# Enhanced Monitoring: OS metrics (per-process memory, I/O, load) every minute.
MONITORING_INTERVAL_SECONDS = 60
MONITORING_POLICY = "service-role/AmazonRDSEnhancedMonitoringRole"
# Statement logging: every schema change (who ran which DDL, when) goes to the postgresql log.
LOG_STATEMENT = "ddl"


# Random characters that make this stack's RDS names its own (see MetadataStore).
IDENTIFIER_SUFFIX_LENGTH = 6


def rds_log_group_prefix(stack: str) -> str:
    """What the names of this stack's RDS log groups start with, whatever suffix was drawn."""
    return f"/aws/rds/instance/{db_identifier(stack, '0' * IDENTIFIER_SUFFIX_LENGTH)[:-IDENTIFIER_SUFFIX_LENGTH]}"


def db_identifier(stack: str, suffix: str = "") -> str:
    """A valid RDS identifier: letter first, letters/digits/single hyphens, at most 63."""
    ident = re.sub(r"[^a-z0-9]+", "-", f"mlflow-{stack}".lower()).strip("-")
    ident = ident[: 63 - (len(suffix) + 1 if suffix else 0)].rstrip("-")
    return f"{ident}-{suffix}" if suffix else ident


# Of what the instance runs (max_connections), what the proxy may use; the rest stays for direct
# admin sessions (psql, a restore).
PROXY_MAX_CONNECTIONS_PERCENT = 90
# A client waits this long for a database connection when all of the proxy's are in use.
PROXY_BORROW_TIMEOUT_SECONDS = 120
# Idle client connections are closed after this (RDS's default): longer than the pools keep any.
PROXY_IDLE_CLIENT_TIMEOUT_SECONDS = 1800
# One per secret the proxy signs in with, in MetadataStore's order.
PROXY_AUTH_DESCRIPTIONS = ("the MLflow servers (their own role)", "the servers' boot step (the master user)")


def master_secret_arn_of(secrets: Sequence[Any] | None) -> str:
    """The ARN of the secret RDS manages for the master user (manage_master_user_password)."""
    if not secrets:
        raise ValueError("RDS reported no master user secret: manage_master_user_password must be on")
    first = secrets[0]
    arn = (first.get("secret_arn") or first.get("secretArn")) if isinstance(first, dict) else first.secret_arn
    if not arn:
        raise ValueError("RDS reported a master user secret without an ARN")
    return arn


def rds_endpoint(settings: AwsDatabaseSettings, host: str, *, through_proxy: bool = False) -> DatabaseEndpoint:
    """How the server reaches the database at `host`: TLS, the server certificate verified (not
    just encrypted). The instance's certificate comes from the RDS CAs (their bundle is in the
    image); RDS Proxy's from ACM, under the Amazon Root CAs of the system bundle."""
    return platform_database(
        host,
        contract.POSTGRES_PORT,
        settings.name,
        settings.username,
        sslmode="verify-full",
        sslrootcert=SYSTEM_CA_BUNDLE_PATH if through_proxy else RDS_CA_BUNDLE_PATH,
    )


@dataclass(frozen=True)
class MetadataStoreArgs:
    settings: AwsDatabaseSettings
    ctx: AwsContext
    # Private subnets.
    subnet_ids: Sequence[pulumi.Input[str]]
    security_group_id: pulumi.Input[str]
    # RDS Proxy's group (settings.proxy).
    proxy_security_group_id: pulumi.Input[str] | None
    # Encrypts the storage and Performance Insights: the key the instance was created with
    # (changing an instance's key replaces the instance).
    storage_key_arn: pulumi.Input[str]
    # Encrypts the credentials secret.
    secrets_key_arn: pulumi.Input[str]
    # Encrypts the log groups.
    logs_key_arn: pulumi.Input[str]
    log_retention_days: int
    max_connections: int


class MetadataStore(pulumi.ComponentResource):
    # Known once the instance exists (its address).
    endpoint: pulumi.Output[DatabaseEndpoint]
    # contract.DB_PASSWORD -> the servers' role's password, contract.DB_OWNER_PASSWORD -> the
    # master password in RDS's own secret (unpinned: RDS rotates it).
    secrets: dict[str, SecretRef]

    def __init__(self, name: str, args: MetadataStoreArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlflow-platform:aws:MetadataStore", name, None, opts)
        settings, ctx = args.settings, args.ctx
        child = pulumi.ResourceOptions(parent=self)
        # Drawn once per stack (kept in its state): the instance, its log groups and its final
        # snapshot get names no earlier stack of the same name left behind (a final snapshot
        # `mlflow-prod-final` or a log group RDS re-created would otherwise fail the next `up`).
        suffix = random.RandomString(
            f"{name}-identifier",
            random.RandomStringArgs(length=IDENTIFIER_SUFFIX_LENGTH, special=False, upper=False),
            opts=child,
        )
        identifier = suffix.result.apply(lambda value: db_identifier(ctx.stack, value))

        # Letters and digits only: nothing to escape in a URI, 40 characters (~238 bits).
        server_password = generated_secret(f"{name}-server-password", contract.RDS_PASSWORD_LENGTH, child)
        server_secret = json_secret(
            f"{name}-server-credentials",
            f"MLflow metadata database (mlflow-{ctx.stack}): the servers' role {contract.SERVER_DB_ROLE}",
            server_password.apply(lambda pw: {USERNAME_KEY: contract.SERVER_DB_ROLE, PASSWORD_KEY: pw}),
            args.secrets_key_arn,
            child,
        )
        monitoring_role, monitoring = self._monitoring_role(name, ctx)

        subnets = aws.rds.SubnetGroup(
            name,
            aws.rds.SubnetGroupArgs(subnet_ids=list(args.subnet_ids), description="MLflow database: private subnets"),
            opts=child,
        )
        parameters = aws.rds.ParameterGroup(
            name,
            aws.rds.ParameterGroupArgs(
                family=f"postgres{settings.major_version}",
                description="MLflow database: TLS only, connection and slow-statement logging",
                parameters=[
                    # Refuse any connection without TLS.
                    aws.rds.ParameterGroupParameterArgs(name="rds.force_ssl", value="1", apply_method="pending-reboot"),
                    aws.rds.ParameterGroupParameterArgs(
                        name="ssl_min_protocol_version", value="TLSv1.2", apply_method="pending-reboot"
                    ),
                    aws.rds.ParameterGroupParameterArgs(name="log_connections", value="1"),
                    aws.rds.ParameterGroupParameterArgs(name="log_disconnections", value="1"),
                    aws.rds.ParameterGroupParameterArgs(
                        name="log_min_duration_statement", value=str(settings.log_min_duration_ms)
                    ),
                    # Role passwords are sent as SCRAM verifiers by the boot step: never logged.
                    aws.rds.ParameterGroupParameterArgs(name="log_statement", value=LOG_STATEMENT),
                    # A commit is acknowledged once it is on disk (components/specs/durability.py;
                    # RDS fixes the others on). Dynamic: applied without a reboot.
                    *(
                        aws.rds.ParameterGroupParameterArgs(name=key, value=DURABLE_SETTINGS[key])
                        for key in RDS_SETTABLE
                    ),
                    # Without the proxy every worker of every task (of a rollout at the autoscaling
                    # maximum) may hold its full pools; with it, RDS's default for the instance's
                    # memory holds, and the proxy multiplexes onto 90 % of it. A change of this
                    # pending-reboot parameter takes effect at the next reboot (docs/aws.md).
                    *(
                        []
                        if settings.proxy
                        else [
                            aws.rds.ParameterGroupParameterArgs(
                                name="max_connections", value=str(args.max_connections), apply_method="pending-reboot"
                            )
                        ]
                    ),
                ],
            ),
            opts=child,
        )
        # Created here, not by RDS on first export, so they get a retention period and encryption.
        log_groups = [
            aws.cloudwatch.LogGroup(
                f"{name}-{log}",
                aws.cloudwatch.LogGroupArgs(
                    name=pulumi.Output.concat("/aws/rds/instance/", identifier, f"/{log}"),
                    retention_in_days=args.log_retention_days,
                    kms_key_id=args.logs_key_arn,
                ),
                opts=child,
            )
            for log in LOG_EXPORTS
        ]
        instance = aws.rds.Instance(
            name,
            aws.rds.InstanceArgs(
                identifier=identifier,
                engine="postgres",
                # A bare major version lets RDS apply minor upgrades without a diff here.
                engine_version=settings.engine_version,
                auto_minor_version_upgrade="." not in settings.engine_version,
                allow_major_version_upgrade=False,
                instance_class=settings.instance_class,
                allocated_storage=settings.allocated_storage_gb,
                max_allocated_storage=settings.max_allocated_storage_gb,
                storage_type="gp3",
                storage_encrypted=True,
                kms_key_id=args.storage_key_arn,
                db_name=settings.name,
                username=settings.username,
                # RDS draws the master password, keeps it in a secret under our key, rotates it
                # (every 7 days by default); Pulumi's state never holds it.
                manage_master_user_password=True,
                master_user_secret_kms_key_id=args.secrets_key_arn,
                port=contract.POSTGRES_PORT,
                db_subnet_group_name=subnets.name,
                vpc_security_group_ids=[args.security_group_id],
                publicly_accessible=False,
                multi_az=settings.multi_az,
                parameter_group_name=parameters.name,
                ca_cert_identifier=RDS_CA,
                backup_retention_period=settings.backup_retention_days,
                backup_window=settings.backup_window,
                maintenance_window=settings.maintenance_window,
                copy_tags_to_snapshot=True,
                delete_automated_backups=False,
                deletion_protection=settings.deletion_protection,
                skip_final_snapshot=False,
                final_snapshot_identifier=pulumi.Output.concat(identifier, "-final"),
                enabled_cloudwatch_logs_exports=LOG_EXPORTS,
                performance_insights_enabled=settings.performance_insights,
                performance_insights_kms_key_id=args.storage_key_arn if settings.performance_insights else None,
                performance_insights_retention_period=7 if settings.performance_insights else None,
                monitoring_interval=MONITORING_INTERVAL_SECONDS,
                monitoring_role_arn=monitoring_role.arn,
                # For people (psql with a 15-minute token, `rds_iam` role); MLflow uses its password.
                iam_database_authentication_enabled=True,
                apply_immediately=False,
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[*log_groups, monitoring]),
        )
        master_secret_arn = instance.master_user_secrets.apply(master_secret_arn_of)
        if settings.proxy:
            host = self._proxy(name, args, [server_secret.arn, master_secret_arn], instance)
        else:
            host = instance.address
        # What AWS Backup's selection names (components/aws/backup.py).
        self.instance_arn = instance.arn
        self.endpoint = host.apply(lambda address: rds_endpoint(settings, address, through_proxy=settings.proxy))
        # What a deploy snapshots before a schema upgrade (deploy/aws/upgrade.py).
        self.instance_identifier: pulumi.Output[str] = instance.identifier
        self.secrets = {
            contract.DB_PASSWORD: server_secret.ref(PASSWORD_KEY),
            contract.DB_OWNER_PASSWORD: SecretRef.rotated_by_aws(master_secret_arn, PASSWORD_KEY),
        }
        self.register_outputs(
            {
                "address": instance.address,
                "port": instance.port,
                "secretArn": server_secret.arn,
                "masterSecretArn": master_secret_arn,
            }
        )

    def _monitoring_role(self, name: str, ctx: AwsContext) -> tuple[aws.iam.Role, aws.iam.RolePolicyAttachment]:
        """The role Enhanced Monitoring writes OS metrics to CloudWatch Logs with (RDSOSMetrics);
        assumable only by RDS monitoring on behalf of this account (the confused-deputy guard
        RDS documents). With its attachment: the instance must wait for the permissions, or RDS
        refuses the role as lacking them."""
        child = pulumi.ResourceOptions(parent=self)
        role = aws.iam.Role(
            f"{name}-monitoring",
            aws.iam.RoleArgs(
                description="MLflow database: Enhanced Monitoring writes OS metrics",
                assume_role_policy=service_trust("monitoring.rds.amazonaws.com", ctx.account_id,
                                                 ctx.arn("rds", "db:*")),
                max_session_duration=3600,
            ),
            opts=child,
        )  # fmt: skip
        return role, aws.iam.RolePolicyAttachment(
            f"{name}-monitoring",
            aws.iam.RolePolicyAttachmentArgs(
                role=role.name,
                policy_arn=pulumi.Output.concat("arn:", ctx.partition, ":iam::aws:policy/", MONITORING_POLICY),
            ),
            opts=child,
        )

    def _proxy(self, name: str, args: MetadataStoreArgs, secret_arns: list[pulumi.Output[str]],
               instance: aws.rds.Instance) -> pulumi.Output[str]:  # fmt: skip
        """RDS Proxy in front of the instance; its endpoint, known once the instance is its target.

        The servers' pools (bench/CONNECTIONS.md: three per worker with basic-auth, 42 each) can
        reach thousands of connections during a rollout at the autoscaling maximum; the proxy
        lends them the instance's connections only while a transaction runs. It signs clients in
        (SCRAM) as, and signs in to the database with, the credentials of two secrets: the
        servers' role and the master user (the boot step's); it refuses clients without TLS.
        """
        child = pulumi.ResourceOptions(parent=self)
        security_group_id = args.proxy_security_group_id
        assert security_group_id is not None, "SecurityGroupsArgs(database_proxy=True) makes it"
        role = aws.iam.Role(
            f"{name}-proxy",
            aws.iam.RoleArgs(
                description="MLflow database proxy: reads the database credentials",
                # The trust RDS documents for proxies (no condition keys are documented for it).
                assume_role_policy=document({"Sid": "AssumedByRds", "Effect": "Allow",
                                             "Principal": {"Service": "rds.amazonaws.com"}, "Action": "sts:AssumeRole"}),
            ),
            opts=child,
        )  # fmt: skip
        policy = aws.iam.RolePolicy(
            f"{name}-proxy",
            aws.iam.RolePolicyArgs(
                role=role.id,
                policy=document(
                    statement("ReadTheCredentials", ["secretsmanager:GetSecretValue"], secret_arns),
                    statement("DecryptThemThroughSecretsManager", ["kms:Decrypt"], [args.secrets_key_arn],
                              Condition={"StringEquals": {"kms:ViaService": args.ctx.service_host("secretsmanager")}}),
                ),
            ),
            opts=child,
        )  # fmt: skip
        proxy = aws.rds.Proxy(
            f"{name}-proxy",
            aws.rds.ProxyArgs(
                engine_family="POSTGRESQL",
                role_arn=role.arn,
                vpc_subnet_ids=list(args.subnet_ids),
                vpc_security_group_ids=[security_group_id],
                require_tls=True,
                idle_client_timeout=PROXY_IDLE_CLIENT_TIMEOUT_SECONDS,
                debug_logging=False,
                auths=[aws.rds.ProxyAuthArgs(
                    auth_scheme="SECRETS",
                    secret_arn=arn,
                    iam_auth="DISABLED",
                    client_password_auth_type="POSTGRES_SCRAM_SHA_256",
                    description=description,
                ) for arn, description in zip(secret_arns, PROXY_AUTH_DESCRIPTIONS, strict=True)],
            ),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[policy]),
        )  # fmt: skip
        target_group = aws.rds.ProxyDefaultTargetGroup(
            f"{name}-proxy",
            aws.rds.ProxyDefaultTargetGroupArgs(
                db_proxy_name=proxy.name,
                connection_pool_config=aws.rds.ProxyDefaultTargetGroupConnectionPoolConfigArgs(
                    max_connections_percent=PROXY_MAX_CONNECTIONS_PERCENT,
                    max_idle_connections_percent=PROXY_MAX_CONNECTIONS_PERCENT // 2,
                    connection_borrow_timeout=PROXY_BORROW_TIMEOUT_SECONDS,
                ),
            ),
            opts=child,
        )
        target = aws.rds.ProxyTarget(
            f"{name}-proxy",
            aws.rds.ProxyTargetArgs(
                db_proxy_name=proxy.name,
                # The group's name ("default"), not the proxy's (terraform-provider-aws #17205).
                target_group_name=target_group.name,
                # The instance's identifier output: registered once the instance exists.
                db_instance_identifier=instance.identifier,
            ),
            opts=child,
        )
        # Through the target: nothing connects before the proxy has a database behind it.
        return pulumi.Output.all(proxy.endpoint, target.id).apply(lambda values: values[0])
