"""A passing and a failing fixture per rule, with the exact violations the failing one must raise.

Resources are built the way the engine describes them: camelCase inputs, URNs that name the
parent component types, and property dependencies for every input that came from another
resource (how stack rules join a bucket to its public-access block, a rule to its group...).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any

from rules import Res

PROJECT = "urn:pulumi:prod::mlflow-platform::"


def res(
    typ: str,
    name: str,
    props: dict | None = None,
    deps: dict[str, list[Res]] | None = None,
    parents: tuple[str, ...] = (),
) -> Res:
    deps = deps or {}
    return Res(
        type=typ,
        name=name,
        props=props or {},
        urn=f"{PROJECT}{'$'.join([*parents, typ])}::{name}",
        dependencies=tuple(dict.fromkeys(d.urn for ds in deps.values() for d in ds)),
        property_dependencies={k: tuple(d.urn for d in v) for k, v in deps.items()},
    )


def with_props(r: Res, **changes: Any) -> Res:
    return replace(r, props={**r.props, **changes})


def another(r: Res, name: str, **changes: Any) -> Res:
    """A resource like `r`, named `name` (its own URN), with `changes`."""
    return res(r.type, name, {**r.props, **changes})


@dataclass
class Case:
    good: list[Res]
    bad: list[Res]
    # (name of the resource reported on, message)
    violations: list[tuple[str, str]]


CASES: dict[str, Case] = {}

# ---- RDS --------------------------------------------------------------------------------------
INSTANCE = "aws:rds/instance:Instance"
PARAMS = "aws:rds/parameterGroup:ParameterGroup"
DB_PROPS = {
    "engine": "postgres",
    "storageEncrypted": True,
    "publiclyAccessible": False,
    "backupRetentionPeriod": 14,
    "deletionProtection": True,
    "skipFinalSnapshot": False,
    "finalSnapshotIdentifier": "mlflow-prod-final",
    "multiAz": True,
    "autoMinorVersionUpgrade": True,
    "enabledCloudwatchLogsExports": ["postgresql", "upgrade"],
    "parameterGroupName": "db-params",
    "monitoringInterval": 60,
    "monitoringRoleArn": "arn:aws:iam::123456789012:role/mlflow-prod-db-monitoring-0a1b2c3",
    "iamDatabaseAuthenticationEnabled": True,
    "manageMasterUserPassword": True,
}
DB_PARAMETERS = [{"name": "rds.force_ssl", "value": "1"}, {"name": "log_statement", "value": "ddl"}]
params = res(PARAMS, "db-params", {"family": "postgres17", "parameters": DB_PARAMETERS})
db = res(INSTANCE, "db", DB_PROPS, deps={"parameterGroupName": [params]})


def db_case(violations: list[str], **changes: Any) -> Case:
    return Case([db, params], [with_props(db, **changes), params], [("db", v) for v in violations])


CASES["rds-storage-encrypted"] = db_case(["storageEncrypted must be true"], storageEncrypted=False)
CASES["rds-not-public"] = db_case(["publiclyAccessible must be false"], publiclyAccessible=True)
CASES["rds-backup-retention"] = db_case(
    ["backupRetentionPeriod is 3 days; keep backups at least 7 days"], backupRetentionPeriod=3
)
CASES["rds-deletion-protection"] = db_case(["deletionProtection must be true"], deletionProtection=False)
CASES["rds-final-snapshot"] = db_case(["skipFinalSnapshot must be false"], skipFinalSnapshot=True)
CASES["rds-multi-az"] = db_case(["multiAz must be true"], multiAz=False)
CASES["rds-minor-upgrades-and-logs"] = db_case(
    [
        "autoMinorVersionUpgrade must not be false",
        "enabledCloudwatchLogsExports must list the engine's logs (postgresql)",
    ],
    autoMinorVersionUpgrade=False,
    enabledCloudwatchLogsExports=[],
)
CASES["rds-force-ssl"] = Case(
    [db, params],
    [
        db,
        with_props(params, parameters=[{"name": "rds.force_ssl", "value": "0"}]),
        res(INSTANCE, "db2", {**DB_PROPS, "parameterGroupName": "default.postgres17"}),
    ],
    [
        ("db", "Instance 'db': parameter group 'db-params' must set rds.force_ssl to 1"),
        ("db2", "Instance 'db2' uses the engine's default parameter group, which does not force SSL"),
    ],
)

CASES["rds-enhanced-monitoring"] = db_case(
    [
        "monitoringInterval must be one of 1, 5, 10, 15, 30 or 60 seconds",
        "monitoringRoleArn must name the role Enhanced Monitoring writes with",
    ],
    monitoringInterval=0,
    monitoringRoleArn=None,
)
CASES["rds-iam-authentication"] = db_case(
    ["iamDatabaseAuthenticationEnabled must be true"], iamDatabaseAuthenticationEnabled=False
)
CASES["rds-managed-master-password"] = db_case(
    [
        "password must not be set: let RDS manage it (manageMasterUserPassword)",
        "manageMasterUserPassword must be true",
    ],
    manageMasterUserPassword=None,
    password="s3cret-in-the-state",
)
CASES["rds-ddl-logged"] = Case(
    [db, params],
    [
        db,
        with_props(
            params, parameters=[{"name": "rds.force_ssl", "value": "1"}, {"name": "log_statement", "value": "none"}]
        ),
        res(INSTANCE, "db2", {**DB_PROPS, "parameterGroupName": "default.postgres17"}),
    ],
    [
        ("db", "Instance 'db': parameter group 'db-params' must set log_statement to all or ddl or mod"),
        ("db2", "Instance 'db2' uses the engine's default parameter group, which does not log DDL"),
    ],
)

CASES["rds-durable-commits"] = Case(
    [db, with_props(params, parameters=[*DB_PARAMETERS, {"name": "synchronous_commit", "value": "on"}])],
    [
        db,
        with_props(
            params,
            parameters=[
                *DB_PARAMETERS,
                {"name": "synchronous_commit", "value": "off"},
                {"name": "fsync", "value": "0"},
                {"name": "full_page_writes", "value": "on"},
            ],
        ),
    ],
    [
        ("db-params", "synchronous_commit=off acknowledges commits a crash can lose; leave it on"),
        ("db-params", "fsync=0 acknowledges commits a crash can lose; leave it on"),
    ],
)

# ---- S3 ---------------------------------------------------------------------------------------
BUCKET = "aws:s3/bucket:Bucket"
PAB = "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock"
SSE = "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
VERSIONING = "aws:s3/bucketVersioning:BucketVersioning"
BUCKET_POLICY = "aws:s3/bucketPolicy:BucketPolicy"
LIFECYCLE = "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration"
OWNERSHIP = "aws:s3/bucketOwnershipControls:BucketOwnershipControls"
LB = "aws:lb/loadBalancer:LoadBalancer"
LISTENER = "aws:lb/listener:Listener"
DENY_HTTP = {
    "Sid": "DenyInsecureTransport",
    "Effect": "Deny",
    "Principal": "*",
    "Action": ["s3:*"],
    "Resource": ["arn:aws:s3:::b", "arn:aws:s3:::b/*"],
    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
}


def bucket_set(name: str, algorithm: str = "aws:kms") -> dict[str, Res]:
    bucket = res(BUCKET, name, {"forceDestroy": False})
    on = {"bucket": [bucket]}
    return {
        "bucket": bucket,
        "pab": res(
            PAB,
            f"{name}-pab",
            {
                "bucket": f"{name}-id",
                "blockPublicAcls": True,
                "blockPublicPolicy": True,
                "ignorePublicAcls": True,
                "restrictPublicBuckets": True,
            },
            on,
        ),
        "sse": res(
            SSE,
            f"{name}-sse",
            {
                "bucket": f"{name}-id",
                "rules": [
                    {"applyServerSideEncryptionByDefault": {"sseAlgorithm": algorithm}, "bucketKeyEnabled": True}
                ],
            },
            on,
        ),
        "versioning": res(
            VERSIONING,
            f"{name}-versioning",
            {"bucket": f"{name}-id", "versioningConfiguration": {"status": "Enabled"}},
            on,
        ),
        "policy": res(
            BUCKET_POLICY,
            f"{name}-policy",
            {"bucket": f"{name}-id", "policy": json.dumps({"Version": "2012-10-17", "Statement": [DENY_HTTP]})},
            on,
        ),
        "lifecycle": res(
            LIFECYCLE,
            f"{name}-lifecycle",
            {
                "bucket": f"{name}-id",
                "rules": [
                    {
                        "id": "abort",
                        "status": "Enabled",
                        "filter": {"prefix": ""},
                        "abortIncompleteMultipartUpload": {"daysAfterInitiation": 7},
                    }
                ],
            },
            on,
        ),
        "ownership": res(
            OWNERSHIP,
            f"{name}-ownership",
            {"bucket": f"{name}-id", "rule": {"objectOwnership": "BucketOwnerEnforced"}},
            on,
        ),
    }


artifacts = bucket_set("artifacts")
logs = bucket_set("logs", algorithm="AES256")
log_writer = res(
    LB,
    "alb",
    {"loadBalancerType": "application", "accessLogs": {"enabled": True, "bucket": "logs-0a1b", "prefix": "alb"}},
    deps={"accessLogs": [logs["bucket"]]},
)
BUCKET_LOGGING = "aws:s3/bucketLogging:BucketLogging"
server_access_logs = res(
    BUCKET_LOGGING,
    "artifacts-logging",
    {"bucket": "artifacts-0a1b", "targetBucket": "logs-0a1b", "targetPrefix": "s3-access/artifacts/"},
    deps={"bucket": [artifacts["bucket"]], "targetBucket": [logs["bucket"]]},
)
S3_GOOD = [*artifacts.values(), *logs.values(), log_writer, server_access_logs]


def s3_bad(part: str, changed: Res | None, extra: list[Res] = ()) -> list[Res]:
    """The good S3 resources with the artifact bucket's `part` replaced (or removed when None)."""
    kept = [r for key, r in artifacts.items() if key != part]
    return [*kept, *([changed] if changed else []), *logs.values(), log_writer, server_access_logs, *extra]


other = bucket_set("other")
CASES["s3-public-access-block"] = Case(
    S3_GOOD,
    s3_bad(
        "pab",
        None,
        [
            *[r for k, r in other.items() if k != "pab"],
            with_props(other["pab"], restrictPublicBuckets=False, ignorePublicAcls=False),
        ],
    ),
    [
        ("other-pab", "BucketPublicAccessBlock 'other-pab' must set ignorePublicAcls, restrictPublicBuckets to true"),
        ("artifacts", "Bucket 'artifacts' has no BucketPublicAccessBlock"),
    ],
)
CASES["s3-encryption-kms"] = Case(
    S3_GOOD,
    s3_bad(
        "sse", with_props(artifacts["sse"], rules=[{"applyServerSideEncryptionByDefault": {"sseAlgorithm": "AES256"}}])
    ),
    [("artifacts-sse", "Bucket 'artifacts' is encrypted with AES256; use aws:kms or aws:kms:dsse")],
)
CASES["s3-versioning"] = Case(
    S3_GOOD,
    s3_bad("versioning", with_props(artifacts["versioning"], versioningConfiguration={"status": "Suspended"})),
    [("artifacts-versioning", "Bucket 'artifacts': versioning status is 'Suspended', must be 'Enabled'")],
)
CASES["s3-tls-only"] = Case(
    S3_GOOD,
    s3_bad(
        "policy",
        with_props(
            artifacts["policy"],
            policy=json.dumps({"Statement": [{**DENY_HTTP, "Condition": {"Bool": {"aws:SecureTransport": "true"}}}]}),
        ),
    ),
    [
        (
            "artifacts-policy",
            "Bucket 'artifacts': the bucket policy must deny s3:* to every principal when aws:SecureTransport is false",
        )
    ],
)
CASES["s3-abort-incomplete-uploads"] = Case(
    S3_GOOD,
    s3_bad(
        "lifecycle",
        with_props(
            artifacts["lifecycle"],
            rules=[
                {"id": "expire", "status": "Enabled", "noncurrentVersionExpiration": {"noncurrentDays": 90}},
                {"id": "abort-off", "status": "Disabled", "abortIncompleteMultipartUpload": {"daysAfterInitiation": 7}},
            ],
        ),
    ),
    [
        (
            "artifacts-lifecycle",
            "Bucket 'artifacts': no enabled lifecycle rule sets abortIncompleteMultipartUpload.daysAfterInitiation",
        )
    ],
)
CASES["s3-acls-disabled"] = Case(
    S3_GOOD,
    s3_bad("ownership", with_props(artifacts["ownership"], rule={"objectOwnership": "ObjectWriter"})),
    [("artifacts-ownership", "Bucket 'artifacts': object ownership is 'ObjectWriter', must be 'BucketOwnerEnforced'")],
)
CASES["s3-policy-not-public"] = Case(
    S3_GOOD,
    s3_bad(
        "policy",
        with_props(
            artifacts["policy"],
            policy=json.dumps(
                {
                    "Statement": [
                        DENY_HTTP,
                        {
                            "Sid": "Public",
                            "Effect": "Allow",
                            "Principal": {"AWS": "*"},
                            "Action": "s3:GetObject",
                            "Resource": "arn:aws:s3:::b/*",
                        },
                    ]
                }
            ),
        ),
    ),
    [("artifacts-policy", "statement 'Public' allows s3:GetObject to every principal")],
)
kms_logs, unlogged = bucket_set("kms-logs"), bucket_set("unlogged")
CASES["s3-access-logging"] = Case(
    S3_GOOD,
    [
        # A bucket without logging; another one logging into an SSE-KMS bucket.
        *S3_GOOD,
        *unlogged.values(),
        *other.values(),
        *kms_logs.values(),
        res(
            BUCKET_LOGGING,
            "other-logging",
            {"bucket": "other-0a1b", "targetBucket": "kms-logs-0a1b"},
            deps={"bucket": [other["bucket"]], "targetBucket": [kms_logs["bucket"]]},
        ),
    ],  # fmt: skip
    [
        ("unlogged", "Bucket 'unlogged' has no BucketLogging"),
        ("other-logging", "Bucket 'kms-logs' receives server access logs: it must use AES256 (SSE-S3)"),
    ],
)

# ---- ALB --------------------------------------------------------------------------------------
ALB_PROPS = {
    "loadBalancerType": "application",
    "internal": False,
    "dropInvalidHeaderFields": True,
    "enableDeletionProtection": True,
    "desyncMitigationMode": "defensive",
    "accessLogs": {"enabled": True, "bucket": "logs-0a1b", "prefix": "alb"},
}
alb = res(LB, "alb", ALB_PROPS)
https = res(
    LISTENER,
    "https",
    {
        "protocol": "HTTPS",
        "port": 443,
        "sslPolicy": "ELBSecurityPolicy-TLS13-1-2-Res-2021-06",
        "certificateArn": "arn:aws:acm:eu-west-1:123456789012:certificate/x",
        "loadBalancerArn": "alb-arn",
        "defaultActions": [{"type": "forward", "targetGroupArn": "tg-arn"}],
    },
    deps={"loadBalancerArn": [alb]},
)
http = res(
    LISTENER,
    "http",
    {
        "protocol": "HTTP",
        "port": 80,
        "loadBalancerArn": "alb-arn",
        "defaultActions": [
            {"type": "redirect", "redirect": {"protocol": "HTTPS", "port": "443", "statusCode": "HTTP_301"}}
        ],
    },
    deps={"loadBalancerArn": [alb]},
)
ALB_GOOD = [alb, https, http]
alb2 = res(LB, "alb2", ALB_PROPS)
CASES["alb-https-tls-policy"] = Case(
    ALB_GOOD,
    # A TLS 1.0 policy sharing the allowed policies' prefix, and a second ALB with only plain HTTP.
    [
        alb,
        with_props(https, sslPolicy="ELBSecurityPolicy-TLS13-1-0-2021-06"),
        http,
        alb2,
        res(LISTENER, "http2", http.props, deps={"loadBalancerArn": [alb2]}),
    ],
    [
        (
            "https",
            "Listener 'https': sslPolicy 'ELBSecurityPolicy-TLS13-1-0-2021-06' is not one of the allowed policies "
            "(ELBSecurityPolicy-TLS13-1-2-Res-2021-06, ELBSecurityPolicy-TLS13-1-2-2021-06, "
            "ELBSecurityPolicy-TLS13-1-3-2021-06, ELBSecurityPolicy-TLS13-1-2-Res-FIPS-2023-04, "
            "ELBSecurityPolicy-TLS13-1-2-FIPS-2023-04, ELBSecurityPolicy-TLS13-1-3-FIPS-2023-04)",
        ),
        ("alb2", "LoadBalancer 'alb2' has no HTTPS listener"),
    ],
)
CASES["alb-http-redirects-only"] = Case(
    ALB_GOOD,
    [alb, https, with_props(http, defaultActions=[{"type": "forward", "targetGroupArn": "tg-arn"}])],
    [("http", "Listener 'http' serves plain HTTP: its default action must redirect to HTTPS")],
)
CASES["alb-drop-invalid-headers"] = Case(
    ALB_GOOD, [with_props(alb, dropInvalidHeaderFields=False)], [("alb", "dropInvalidHeaderFields must be true")]
)
CASES["alb-access-logs"] = Case(
    ALB_GOOD, [with_props(alb, accessLogs={"enabled": False})], [("alb", "accessLogs must be enabled with a bucket")]
)
CASES["alb-deletion-protection"] = Case(
    ALB_GOOD, [with_props(alb, enableDeletionProtection=False)], [("alb", "enableDeletionProtection must be true")]
)
CASES["alb-desync-mitigation"] = Case(
    ALB_GOOD,
    [with_props(alb, desyncMitigationMode="monitor")],
    [("alb", "desyncMitigationMode is 'monitor'; use 'defensive' or 'strictest'")],
)

LISTENER_RULE = "aws:lb/listenerRule:ListenerRule"
OIDC_SIGN_IN = {
    "type": "authenticate-oidc",
    "order": 1,
    "authenticateOidc": {"issuer": "https://login.example.com", "clientId": "mlflow"},
}
signed_in = with_props(
    https, defaultActions=[OIDC_SIGN_IN, {"type": "forward", "order": 2, "targetGroupArn": "tg-arn"}]
)


def listener_rule(name: str, *actions: dict, listener: Res = signed_in) -> Res:
    props = {"listenerArn": "https-arn", "priority": 100, "actions": list(actions),
             "conditions": [{"pathPattern": {"values": ["/v1/traces"]}}]}  # fmt: skip
    return res(LISTENER_RULE, name, props, deps={"listenerArn": [listener]})


def oidc(on_unauthenticated: str) -> dict:
    return {**OIDC_SIGN_IN, "authenticateOidc": {**OIDC_SIGN_IN["authenticateOidc"],
                                                 "onUnauthenticatedRequest": on_unauthenticated}}  # fmt: skip


FORWARD = {"type": "forward", "order": 2, "targetGroupArn": "tg-arn"}
COGNITO_SIGN_IN = {"type": "authenticate-cognito", "order": 1, "authenticateCognito": {"userPoolArn": "pool"}}
CASES["alb-rules-keep-sign-in"] = Case(
    # The OTLP rule (deny), a rule with AWS's default (authenticate), a rule that only answers, and a
    # forwarding rule on a listener without sign-in (basic-auth: MLflow checks).
    [alb, signed_in, http,
     listener_rule("otlp", oidc("deny"), FORWARD), listener_rule("browse", OIDC_SIGN_IN, FORWARD),
     listener_rule("maintenance", {"type": "fixed-response", "fixedResponse": {"statusCode": "503"}}),
     listener_rule("plain", FORWARD, listener=res(LISTENER, "open", https.props, deps={"loadBalancerArn": [alb]}))],
    # No sign-in, sign-in that lets anonymous requests through, another provider's sign-in.
    [alb, signed_in, http,
     listener_rule("bare", FORWARD), listener_rule("open-door", oidc("allow"), FORWARD),
     listener_rule("other-idp", COGNITO_SIGN_IN, FORWARD)],
    [(name, f"ListenerRule '{name}' forwards without the sign-in of Listener 'https' (authenticate-oidc)")
     for name in ("bare", "open-door", "other-idp")],
)  # fmt: skip

# ---- ECS --------------------------------------------------------------------------------------
TASK = "aws:ecs/taskDefinition:TaskDefinition"
SERVICE = "aws:ecs/service:Service"
CLUSTER = "aws:ecs/cluster:Cluster"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
CONTAINER_DEF = {
    "name": "mlflow",
    "image": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/mlflow@sha256:" + "ab" * 32,
    "user": "10001:10001",
    "readonlyRootFilesystem": True,
    "environment": [{"name": "MLFLOW_DB_HOST", "value": "db.example"}, {"name": "MLFLOW_DB_USER", "value": "mlflow"}],
    "secrets": [{"name": "MLFLOW_DB_PASSWORD", "valueFrom": "arn:aws:secretsmanager:eu-west-1:1:secret:db:password::"}],
    "logConfiguration": {"logDriver": "awslogs", "options": {"awslogs-group": "/mlflow/prod/tracking-server"}},
}
log_group = res(
    LOG_GROUP,
    "logs",
    {
        "name": "/mlflow/prod/tracking-server",
        "retentionInDays": 90,
        "kmsKeyId": "arn:aws:kms:eu-west-1:123456789012:key/k",
    },
)


def task(**container_changes: Any) -> Res:
    definition = {**CONTAINER_DEF, **container_changes}
    return res(
        TASK,
        "task",
        {
            "family": "mlflow",
            "networkMode": "awsvpc",
            "requiresCompatibilities": ["FARGATE"],
            "containerDefinitions": json.dumps([definition]),
        },
        deps={"containerDefinitions": [log_group]},
    )


service = res(
    SERVICE,
    "service",
    {
        "launchType": "FARGATE",
        "networkConfiguration": {"assignPublicIp": False},
        "deploymentCircuitBreaker": {"enable": True, "rollback": True},
    },
)
cluster = res(
    CLUSTER,
    "cluster",
    {
        "settings": [{"name": "containerInsights", "value": "enabled"}],
        "configuration": {
            "managedStorageConfiguration": {
                "fargateEphemeralStorageKmsKeyId": "arn:aws:kms:eu-west-1:123456789012:key/storage"
            }
        },
    },
)
ECS_GOOD = [task(), service, cluster, log_group]
CASES["ecs-no-secrets-in-environment"] = Case(
    ECS_GOOD,
    [
        task(
            environment=[
                {"name": "MLFLOW_DB_PASSWORD", "value": "hunter2"},
                {"name": "MLFLOW_BACKEND_STORE_URI", "value": "postgresql://mlflow:hunter2@db/mlflow"},
            ]
        )
    ],
    [
        ("task", "container 'mlflow': MLFLOW_DB_PASSWORD looks like a secret; pass it in `secrets` instead"),
        ("task", "container 'mlflow': MLFLOW_BACKEND_STORE_URI has credentials in a URL; pass it in `secrets` instead"),
    ],
)
CASES["ecs-read-only-root-filesystem"] = Case(
    ECS_GOOD,
    [task(readonlyRootFilesystem=False)],
    [("task", "container 'mlflow': readonlyRootFilesystem must be true")],
)
CASES["ecs-not-privileged"] = Case(
    ECS_GOOD, [task(privileged=True)], [("task", "container 'mlflow': privileged must not be true")]
)
CASES["ecs-non-root-user"] = Case(
    ECS_GOOD, [task(user="root")], [("task", "container 'mlflow': user must be a non-root uid (is 'root')")]
)
CASES["ecs-logs-with-retention"] = Case(
    ECS_GOOD,
    [task(), with_props(log_group, retentionInDays=0)],
    [
        (
            "logs",
            "TaskDefinition 'task' container 'mlflow' logs to LogGroup 'logs', which keeps logs forever "
            "(set retentionInDays)",
        )
    ],
)
CASES["ecs-no-public-ip"] = Case(
    ECS_GOOD,
    [with_props(service, networkConfiguration={"assignPublicIp": True})],
    [("service", "networkConfiguration.assignPublicIp must be false")],
)
CASES["ecs-circuit-breaker-rollback"] = Case(
    ECS_GOOD,
    [with_props(service, deploymentCircuitBreaker={"enable": True, "rollback": False})],
    [("service", "deploymentCircuitBreaker must have enable and rollback set to true")],
)
CASES["ecs-container-insights"] = Case(
    ECS_GOOD,
    [with_props(cluster, settings=[{"name": "containerInsights", "value": "disabled"}])],
    [("cluster", "settings must turn containerInsights on ('enabled' or 'enhanced')")],
)
CASES["ecs-fargate-storage-cmk"] = Case(
    ECS_GOOD,
    [with_props(cluster, configuration=None), another(cluster, "other", configuration={})],
    [
        ("cluster", "configuration.managedStorageConfiguration.fargateEphemeralStorageKmsKeyId must name a KMS key"),
        ("other", "configuration.managedStorageConfiguration.fargateEphemeralStorageKmsKeyId must name a KMS key"),
    ],
)

# ---- network ----------------------------------------------------------------------------------
VPC = "aws:ec2/vpc:Vpc"
SUBNET = "aws:ec2/subnet:Subnet"
FLOW_LOG = "aws:ec2/flowLog:FlowLog"
SG = "aws:ec2/securityGroup:SecurityGroup"
DEFAULT_SG = "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup"
INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
EGRESS = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"
vpc = res(VPC, "vpc", {"cidrBlock": "10.42.0.0/16"})
on_vpc = {"vpcId": [vpc]}
default_sg = res(DEFAULT_SG, "default", {"vpcId": "vpc-id", "ingress": [], "egress": []}, on_vpc)
flow_log = res(FLOW_LOG, "flow", {"vpcId": "vpc-id", "trafficType": "ALL"}, on_vpc)
alb_sg = res(SG, "alb-sg", {"vpcId": "vpc-id", "description": "load balancer"}, on_vpc)
tasks_sg = res(SG, "tasks-sg", {"vpcId": "vpc-id", "description": "tasks"}, on_vpc)
net_alb = res(LB, "alb", ALB_PROPS | {"securityGroups": ["alb-sg-id"]}, {"securityGroups": [alb_sg]})


def ingress(
    name: str,
    group: Res,
    port: int,
    source: Res | None = None,
    cidr: str | None = None,
    description: str | None = "why",
    protocol: str = "tcp",
) -> Res:
    props = {
        "securityGroupId": f"{group.name}-id",
        "ipProtocol": protocol,
        "fromPort": port,
        "toPort": port,
        "description": description,
    }
    deps = {"securityGroupId": [group]}
    if source:
        props["referencedSecurityGroupId"] = f"{source.name}-id"
        deps["referencedSecurityGroupId"] = [source]
    if cidr:
        props["cidrIpv4"] = cidr
    return res(INGRESS, name, props, deps)


def egress(name: str, group: Res, cidr: str, protocol: str = "tcp", port: int | None = 443) -> Res:
    props = {"securityGroupId": f"{group.name}-id", "ipProtocol": protocol, "cidrIpv4": cidr, "description": "out"}
    if port is not None:
        props |= {"fromPort": port, "toPort": port}
    return res(EGRESS, name, props, {"securityGroupId": [group]})


NET_GOOD = [
    vpc,
    default_sg,
    flow_log,
    alb_sg,
    tasks_sg,
    net_alb,
    ingress("alb-https", alb_sg, 443, cidr="0.0.0.0/0"),
    ingress("alb-http", alb_sg, 80, cidr="0.0.0.0/0"),
    ingress("tasks-from-alb", tasks_sg, 5000, source=alb_sg),
    egress("tasks-https", tasks_sg, "0.0.0.0/0"),
    res(SUBNET, "public-0", {"vpcId": "vpc-id", "mapPublicIpOnLaunch": False}, on_vpc),
]
CASES["sg-world-ingress-only-alb-web"] = Case(
    NET_GOOD,
    [
        *NET_GOOD,
        ingress("tasks-open", tasks_sg, 5000, cidr="0.0.0.0/0"),
        ingress("alb-ssh", alb_sg, 22, cidr="0.0.0.0/0"),
    ],
    [
        (
            "tasks-open",
            "SecurityGroupIngressRule 'tasks-open' opens tcp 5000 to 0.0.0.0/0 on SecurityGroup 'tasks-sg'; "
            "only the load balancer's tcp 80/443 may be open to the world",
        ),
        (
            "alb-ssh",
            "SecurityGroupIngressRule 'alb-ssh' opens tcp 22 to 0.0.0.0/0 on SecurityGroup 'alb-sg'; "
            "only the load balancer's tcp 80/443 may be open to the world",
        ),
    ],
)
CASES["sg-no-world-all-traffic-egress"] = Case(
    NET_GOOD,
    [*NET_GOOD, egress("all-out", tasks_sg, "0.0.0.0/0", protocol="-1", port=None)],
    [("all-out", "SecurityGroupEgressRule 'all-out' allows -1 all ports out to 0.0.0.0/0; name the protocol and port")],
)
CASES["sg-rule-descriptions"] = Case(
    NET_GOOD,
    [*NET_GOOD, ingress("undocumented", tasks_sg, 5000, source=alb_sg, description=None)],
    [("undocumented", "SecurityGroupIngressRule 'undocumented': ingress tcp 5000 has no description")],
)
vpc2 = res(VPC, "vpc2", {"cidrBlock": "10.43.0.0/16"})
CASES["default-sg-closed"] = Case(
    NET_GOOD,
    [
        *[r for r in NET_GOOD if r is not default_sg],
        with_props(default_sg, ingress=[{"protocol": "-1", "fromPort": 0, "toPort": 0, "self": True}]),
        vpc2,
        res(FLOW_LOG, "flow2", {"vpcId": "vpc2-id"}, {"vpcId": [vpc2]}),
    ],
    [
        ("default", "DefaultSecurityGroup 'default' must have no ingress rules"),
        ("vpc2", "Vpc 'vpc2': its default security group is not managed (add a DefaultSecurityGroup with no rules)"),
    ],
)
CASES["vpc-flow-logs"] = Case(
    NET_GOOD, [r for r in NET_GOOD if r is not flow_log], [("vpc", "Vpc 'vpc' has no FlowLog")]
)
CASES["subnet-no-auto-public-ip"] = Case(
    NET_GOOD,
    [res(SUBNET, "public-0", {"vpcId": "vpc-id", "mapPublicIpOnLaunch": True}, on_vpc)],
    [("public-0", "mapPublicIpOnLaunch must be false")],
)

# ---- IAM --------------------------------------------------------------------------------------
ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
ATTACHMENT = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"
TRUST = json.dumps(
    {
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "ecs-tasks.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ]
    }
)
role = res(ROLE, "task-role", {"assumeRolePolicy": TRUST})
role_policy = res(
    ROLE_POLICY,
    "task-s3",
    {
        "role": "task-role-id",
        "policy": json.dumps(
            {
                "Statement": [
                    {"Sid": "EcrToken", "Effect": "Allow", "Action": ["ecr:GetAuthorizationToken"], "Resource": ["*"]},
                    {"Sid": "Objects", "Effect": "Allow", "Action": ["s3:GetObject"], "Resource": ["arn:aws:s3:::b/*"]},
                ]
            }
        ),
    },
)
IAM_GOOD = [
    role,
    role_policy,
    res(
        ATTACHMENT,
        "logs",
        {"role": "task-role-id", "policyArn": "arn:aws:iam::aws:policy/CloudWatchLogsReadOnlyAccess"},
    ),
]
CASES["iam-no-wildcard-admin"] = Case(
    IAM_GOOD,
    [
        with_props(
            role_policy,
            policy=json.dumps({"Statement": {"Sid": "Admin", "Effect": "Allow", "Action": "*", "Resource": "*"}}),
        ),
        with_props(
            role,
            inlinePolicies=[
                {
                    "name": "inline",
                    "policy": json.dumps({"Statement": [{"Effect": "Allow", "Action": ["*:*"], "Resource": ["*"]}]}),
                }
            ],
        ),
    ],
    [
        ("task-s3", "policy: statement 'Admin' allows * on *"),
        ("task-role", "inline policy 'inline': statement '(no Sid)' allows * on *"),
    ],
)
CASES["iam-no-administrator-access"] = Case(
    IAM_GOOD,
    [res(ATTACHMENT, "admin", {"role": "task-role-id", "policyArn": "arn:aws:iam::aws:policy/AdministratorAccess"})],
    [("admin", "arn:aws:iam::aws:policy/AdministratorAccess must not be attached")],
)
CASES["iam-trust-named-principals"] = Case(
    IAM_GOOD,
    [
        with_props(
            role,
            assumeRolePolicy=json.dumps(
                {
                    "Statement": [
                        {"Sid": "Anyone", "Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "sts:AssumeRole"}
                    ]
                }
            ),
        )
    ],
    [("task-role", "assumeRolePolicy statement 'Anyone' lets any principal assume the role")],
)

# ---- ECR --------------------------------------------------------------------------------------
REPOSITORY = "aws:ecr/repository:Repository"
ECR_LIFECYCLE = "aws:ecr/lifecyclePolicy:LifecyclePolicy"
repo = res(
    REPOSITORY,
    "repo",
    {
        "imageScanningConfiguration": {"scanOnPush": True},
        "imageTagMutability": "IMMUTABLE",
        "encryptionConfigurations": [
            {"encryptionType": "KMS", "kmsKey": "arn:aws:kms:eu-west-1:123456789012:key/images"}
        ],
    },
)
ECR_GOOD = [repo, res(ECR_LIFECYCLE, "repo-lifecycle", {"repository": "repo", "policy": "{}"}, {"repository": [repo]})]
CASES["ecr-scan-on-push"] = Case(
    ECR_GOOD,
    [with_props(repo, imageScanningConfiguration={"scanOnPush": False})],
    [("repo", "imageScanningConfiguration.scanOnPush must be true")],
)
CASES["ecr-immutable-tags"] = Case(
    ECR_GOOD,
    [with_props(repo, imageTagMutability="MUTABLE")],
    [("repo", "imageTagMutability is 'MUTABLE'; use 'IMMUTABLE'")],
)
CASES["ecr-kms-encryption"] = Case(
    ECR_GOOD,
    [
        with_props(repo, encryptionConfigurations=[{"encryptionType": "AES256"}]),
        another(repo, "default-key", encryptionConfigurations=[{"encryptionType": "KMS"}]),
        another(repo, "unset", encryptionConfigurations=None),
    ],
    [
        ("repo", "encryptionType is 'AES256'; use 'KMS' with a customer-managed kmsKey"),
        ("default-key", "kmsKey must name a customer-managed key (unset: the AWS managed key aws/ecr)"),
        ("unset", "encryptionType is 'AES256'; use 'KMS' with a customer-managed kmsKey"),
    ],
)
CASES["ecr-lifecycle-policy"] = Case(ECR_GOOD, [repo], [("repo", "Repository 'repo' has no LifecyclePolicy")])

# ---- monitoring -------------------------------------------------------------------------------
TOPIC = "aws:sns/topic:Topic"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
topic = res(TOPIC, "alarms", {"kmsMasterKeyId": "arn:aws:kms:eu-west-1:123456789012:key/k"})
CASES["sns-topic-cmk"] = Case(
    [topic],
    [another(topic, "plain", kmsMasterKeyId=None), another(topic, "managed", kmsMasterKeyId="alias/aws/sns")],
    [
        ("plain", "kmsMasterKeyId must name a customer-managed key (unset: not encrypted)"),
        ("managed", "kmsMasterKeyId is the AWS managed key alias/aws/sns; use a customer-managed key"),
    ],
)
alarm = res(ALARM, "cpu", {"threshold": 85, "alarmActions": ["arn:aws:sns:eu-west-1:1:t"],
                           "okActions": ["arn:aws:sns:eu-west-1:1:t"]})  # fmt: skip
CASES["cloudwatch-alarm-actions"] = Case(
    [alarm],
    [another(alarm, "silent", alarmActions=[], okActions=None), another(alarm, "disabled", actionsEnabled=False)],
    [
        ("silent", "alarmActions must name at least one action"),
        ("silent", "okActions must name at least one action"),
        ("disabled", "actionsEnabled must be true"),
    ],
)

# ---- logs, keys, secrets ----------------------------------------------------------------------
KEY = "aws:kms/key:Key"
SECRET = "aws:secretsmanager/secret:Secret"
ROOT_ADMINISTERS = {
    "Sid": "AccountAdministers",
    "Effect": "Allow",
    "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
    "Action": "kms:*",
    "Resource": "*",
}
LOGS_PINNED = {
    "Sid": "Logs",
    "Effect": "Allow",
    "Principal": {"Service": "logs.eu-west-1.amazonaws.com"},
    "Action": ["kms:Encrypt*", "kms:Decrypt*", "kms:GenerateDataKey*"],
    "Resource": "*",
    "Condition": {
        "ArnLike": {"kms:EncryptionContext:aws:logs:arn": "arn:aws:logs:eu-west-1:123456789012:log-group:/mlflow/*"}
    },
}
CALLER_ACCOUNT = {
    "Sid": "ThroughS3InThisAccount",
    "Effect": "Allow",
    "Principal": {"AWS": "*"},
    "Action": ["kms:Decrypt"],
    "Resource": "*",
    "Condition": {
        "StringEquals": {"kms:CallerAccount": "123456789012", "kms:ViaService": "s3.eu-west-1.amazonaws.com"}
    },
}


def key_policy(*statements: dict) -> str:
    return json.dumps({"Version": "2012-10-17", "Statement": list(statements)})


key = res(
    KEY,
    "key",
    {"enableKeyRotation": True, "deletionWindowInDays": 30, "policy": key_policy(ROOT_ADMINISTERS, LOGS_PINNED)},
)
secret = res(SECRET, "secret", {"kmsKeyId": "arn:aws:kms:eu-west-1:123456789012:key/k"})
CASES["cloudwatch-log-retention"] = Case(
    [log_group, with_props(log_group, retentionInDays=365)],
    [with_props(log_group, retentionInDays=None), res(LOG_GROUP, "short", {**log_group.props, "retentionInDays": 30})],
    [
        ("logs", "retentionInDays must be set (0 or unset keeps logs forever)"),
        ("short", "retentionInDays is 30; keep logs at least 90 days"),
    ],
)
CASES["cloudwatch-log-kms"] = Case(
    [log_group], [with_props(log_group, kmsKeyId=None)], [("logs", "kmsKeyId must be set")]
)
CASES["kms-key-rotation"] = Case(
    [key, res(KEY, "signing", {"customerMasterKeySpec": "ECC_NIST_P256", "keyUsage": "SIGN_VERIFY"})],
    [with_props(key, enableKeyRotation=False)],
    [("key", "enableKeyRotation must be true")],
)
CASES["kms-key-policy"] = Case(
    [key],
    [
        with_props(key, policy=None),
        another(key, "empty", policy=key_policy()),
    ],
    [
        ("key", "policy must be set: without it AWS applies its default policy"),
        ("empty", "policy has no statement"),
    ],
)
CASES["kms-key-policy-principals"] = Case(
    [key, another(key, "via-s3", policy=key_policy(ROOT_ADMINISTERS, CALLER_ACCOUNT))],
    [
        with_props(
            key,
            policy=key_policy(
                ROOT_ADMINISTERS,
                {k: v for k, v in LOGS_PINNED.items() if k != "Condition"},
                {**CALLER_ACCOUNT, "Sid": "Anyone", "Condition": {"Bool": {"aws:SecureTransport": "true"}}},
                {**CALLER_ACCOUNT, "Sid": "Star", "Principal": "*", "Condition": {}},
            ),
        )
    ],
    [
        (
            "key",
            "statement 'Logs' lets logs.eu-west-1.amazonaws.com use the key for anyone: pin it with an encryption "
            "context, aws:SourceArn/SourceAccount, kms:ViaService or kms:CallerAccount",
        ),
        ("key", "statement 'Anyone' lets any principal use the key"),
        ("key", "statement 'Star' lets any principal use the key"),
    ],
)
CASES["secretsmanager-cmk"] = Case(
    [secret], [with_props(secret, kmsKeyId=None)], [("secret", "kmsKeyId must name a customer-managed key")]
)

# ---- WAF --------------------------------------------------------------------------------------
WEB_ACL = "aws:wafv2/webAcl:WebAcl"
WAF_ASSOCIATION = "aws:wafv2/webAclAssociation:WebAclAssociation"
WAF_LOGGING = "aws:wafv2/webAclLoggingConfiguration:WebAclLoggingConfiguration"


def visible(metric: str, on: bool = True) -> dict:
    return {"cloudwatchMetricsEnabled": on, "sampledRequestsEnabled": True, "metricName": metric}


def known_bad_inputs(**changes: Any) -> dict:
    group = {"vendorName": "AWS", "name": "AWSManagedRulesKnownBadInputsRuleSet"}
    rule = {"name": "bad-inputs", "priority": 1, "overrideAction": {"none": {}},
            "statement": {"managedRuleGroupStatement": group}, "visibilityConfig": visible("bad-inputs")}  # fmt: skip
    return {**rule, **changes}


ACL_PROPS = {
    "scope": "REGIONAL",
    "defaultAction": {"allow": {}},
    "rules": [known_bad_inputs()],
    "visibilityConfig": visible("acl"),
}
acl = res(WEB_ACL, "acl", ACL_PROPS)
waf_alb = res(LB, "alb", ALB_PROPS)


def waf_logging(name: str, of: Res, redacted: list[str]) -> Res:
    props = {"resourceArn": f"{of.name}-arn", "logDestinationConfigs": ["arn:aws:logs:eu-west-1:1:log-group:aws-waf-logs-x"],
             "redactedFields": [{"singleHeader": {"name": h}} for h in redacted]}  # fmt: skip
    return res(WAF_LOGGING, name, props, {"resourceArn": [of]})


def associate(name: str, lb: Res, web_acl: Res) -> Res:
    return res(WAF_ASSOCIATION, name, {"resourceArn": f"{lb.name}-arn", "webAclArn": f"{web_acl.name}-arn"},
               {"resourceArn": [lb], "webAclArn": [web_acl]})  # fmt: skip


WAF_GOOD = [waf_alb, acl, associate("alb-waf", waf_alb, acl), waf_logging("acl-logs", acl, ["authorization", "cookie"])]
internal_alb = res(LB, "internal-alb", {**ALB_PROPS, "internal": True})
bare_alb = res(LB, "bare-alb", ALB_PROPS)
CASES["alb-waf-associated"] = Case(
    [*WAF_GOOD, internal_alb],
    # An internal ALB needs none; an internet-facing one without an association is reported.
    [*WAF_GOOD, internal_alb, bare_alb],
    [("bare-alb", "LoadBalancer 'bare-alb' is internet-facing and has no WebAclAssociation")],
)
acl2 = res(WEB_ACL, "acl2", ACL_PROPS)
CASES["waf-logging"] = Case(
    WAF_GOOD,
    [waf_alb, acl, acl2, waf_logging("acl2-logs", acl2, ["x-request-id"])],
    [
        ("acl", "WebAcl 'acl' has no WebAclLoggingConfiguration"),
        ("acl2-logs", "WebAclLoggingConfiguration 'acl2-logs' must redact the authorization header (credentials)"),
    ],
)
CASES["waf-rules-with-metrics"] = Case(
    WAF_GOOD,
    [
        with_props(acl, rules=[], visibilityConfig=visible("acl", on=False)),
        with_props(acl2, rules=[known_bad_inputs(visibilityConfig=visible("bad-inputs", on=False))]),
    ],
    [
        ("acl", "WebAcl 'acl' has no rules"),
        ("acl", "WebAcl 'acl': visibilityConfig.cloudwatchMetricsEnabled must be true"),
        ("acl2", "WebAcl 'acl2': rule 'bad-inputs' must set cloudwatchMetricsEnabled"),
    ],
)
log4j_counted = {"name": "Log4JRCE_BODY", "actionToUse": {"count": {}}}
counted_group = known_bad_inputs()
counted_group["statement"] = {"managedRuleGroupStatement": {
    **counted_group["statement"]["managedRuleGroupStatement"], "ruleActionOverrides": [log4j_counted]}}  # fmt: skip
rate_only = {"name": "rate", "priority": 0, "action": {"block": {}}, "visibilityConfig": visible("rate"),
             "statement": {"rateBasedStatement": {"limit": 100, "aggregateKeyType": "IP"}}}  # fmt: skip
CASES["waf-log4j-protection"] = Case(
    # Overriding another rule of the group (or a Log4JRCE rule to block) keeps the protection.
    [
        with_props(
            acl,
            rules=[
                rate_only,
                known_bad_inputs(
                    statement={
                        "managedRuleGroupStatement": {
                            **known_bad_inputs()["statement"]["managedRuleGroupStatement"],
                            "ruleActionOverrides": [
                                {"name": "Host_localhost_HEADER", "actionToUse": {"count": {}}},
                                {"name": "Log4JRCE_HEADER", "actionToUse": {"block": {}}},
                            ],
                        }
                    }
                ),
            ],
        )
    ],  # fmt: skip
    [
        with_props(acl, rules=[rate_only]),
        with_props(acl2, rules=[counted_group]),
        res(WEB_ACL, "acl3", {**ACL_PROPS, "rules": [known_bad_inputs(overrideAction={"count": {}})]}),
    ],
    [
        ("acl", "WebAcl 'acl' has no AWSManagedRulesKnownBadInputsRuleSet rule that blocks its Log4JRCE rules"),
        ("acl2", "WebAcl 'acl2' has no AWSManagedRulesKnownBadInputsRuleSet rule that blocks its Log4JRCE rules"),
        ("acl3", "WebAcl 'acl3' has no AWSManagedRulesKnownBadInputsRuleSet rule that blocks its Log4JRCE rules"),
    ],
)

# ---- the dev stack on Docker ------------------------------------------------------------------
CONTAINER = "docker:index/container:Container"
REMOTE_IMAGE = "docker:index/remoteImage:RemoteImage"
IMAGE = "docker:index/image:Image"
PLATFORM = "mlflow-platform:docker:Platform"
DOCKER_CONTAINER = {
    "image": "sha256:" + "cd" * 32,
    "securityOpts": ["no-new-privileges:true"],
    "envs": ["POSTGRES_PASSWORD_FILE=/run/secrets/postgres", "POSTGRES_USER=mlflow"],
    "healthcheck": {"tests": ["CMD", "pg_isready"]},
}
nginx = res(
    CONTAINER,
    "nginx",
    {**DOCKER_CONTAINER, "ports": [{"internal": 8080, "external": 8080, "ip": "127.0.0.1"}]},
    parents=(PLATFORM, "mlflow-platform:docker:Proxy"),
)
postgres = res(CONTAINER, "postgres", DOCKER_CONTAINER, parents=(PLATFORM, "mlflow-platform:docker:MetadataStore"))
mlflow = res(
    CONTAINER,
    "mlflow-0",
    {
        **DOCKER_CONTAINER,
        "image": "mlflow-platform/mlflow:3.17.2-0123456789ab",
        "envs": ["MLFLOW_BOOT_BUCKET_ENCRYPTION=AES256", "MLFLOW_BOOT_CREATE_BUCKET=mlflow"],
    },
    parents=(PLATFORM, "mlflow-platform:docker:TrackingServer"),
)
ARTIFACT_STORE = "mlflow-platform:docker:ArtifactStore"
SECRET_UPLOAD = {"content": "(secret)", "permissions": "0400"}
minio = res(
    CONTAINER,
    "minio",
    {
        **DOCKER_CONTAINER,
        "envs": [
            "MINIO_CONFIG_ENV_FILE=/run/secrets/minio.env",
            "MINIO_KMS_SECRET_KEY_FILE=/run/secrets/minio-kms-key",
        ],
        "uploads": [
            {**SECRET_UPLOAD, "file": "/run/secrets/minio.env"},
            {**SECRET_UPLOAD, "file": "/run/secrets/minio-kms-key"},
        ],
    },
    parents=(PLATFORM, ARTIFACT_STORE),
)
seaweedfs = res(
    CONTAINER,
    "seaweedfs",
    {
        **DOCKER_CONTAINER,
        "envs": [],
        "uploads": [
            {**SECRET_UPLOAD, "file": "/run/secrets/s3-identities.json"},
            {**SECRET_UPLOAD, "file": "/etc/seaweedfs/security.toml"},
        ],
    },
    parents=(PLATFORM, ARTIFACT_STORE),
)
DOCKER_GOOD = [
    nginx,
    postgres,
    mlflow,
    minio,
    seaweedfs,
    res(REMOTE_IMAGE, "postgres-image", {"name": "postgres:17.6-bookworm"}),
    res(REMOTE_IMAGE, "minio-image", {"name": "minio/minio@sha256:" + "ef" * 32}),
    res(IMAGE, "mlflow-image", {"imageName": "mlflow-platform/mlflow:3.17.2-0123456789ab"}),
]
grafana = res(
    CONTAINER,
    "grafana",
    {**DOCKER_CONTAINER, "ports": [{"internal": 3000, "external": 3000, "ip": "127.0.0.1"}]},
    parents=(PLATFORM, "mlflow-platform:docker:Grafana"),
)
CASES["docker-only-proxy-published"] = Case(
    [*DOCKER_GOOD, grafana],
    [
        nginx,
        with_props(mlflow, ports=[{"internal": 5000, "external": 5000}]),
        # Grafana's own component, published beyond loopback (or on Docker's default, every address).
        res(
            CONTAINER,
            "grafana-lan",
            {**grafana.props, "ports": [{"internal": 3000, "external": 3000, "ip": "0.0.0.0"}]},
            parents=(PLATFORM, "mlflow-platform:docker:Grafana"),
        ),
        res(
            CONTAINER,
            "grafana-default",
            {**grafana.props, "ports": [{"internal": 3000, "external": 3300}]},
            parents=(PLATFORM, "mlflow-platform:docker:Grafana"),
        ),
    ],
    [
        ("mlflow-0", "publishes 5000: only the proxy (mlflow-platform:docker:Proxy) may publish a port"),
        ("grafana-lan", "publishes 3000 beyond this machine: Grafana may publish on 127.0.0.1 only"),
        ("grafana-default", "publishes 3300 beyond this machine: Grafana may publish on 127.0.0.1 only"),
    ],
)
CASES["docker-images-pinned"] = Case(
    DOCKER_GOOD,
    [
        res(REMOTE_IMAGE, "nginx-image", {"name": "nginx:latest"}),
        res(REMOTE_IMAGE, "pg-image", {"name": "postgres"}),
        with_props(mlflow, image="registry.example:5000/mlflow"),
    ],
    [
        ("nginx-image", "image 'nginx:latest' uses the moving tag 'latest'"),
        ("pg-image", "image 'postgres' has no tag"),
        ("mlflow-0", "image 'registry.example:5000/mlflow' has no tag"),
    ],
)
CASES["docker-no-secret-in-env"] = Case(
    DOCKER_GOOD,
    [with_props(postgres, envs=["POSTGRES_PASSWORD=hunter2", "POSTGRES_USER=mlflow"])],
    [("postgres", "POSTGRES_PASSWORD looks like a secret; mount it as a file and pass POSTGRES_PASSWORD_FILE")],
)
CASES["docker-not-privileged"] = Case(
    DOCKER_GOOD, [with_props(postgres, privileged=True)], [("postgres", "privileged must not be true")]
)
CASES["docker-no-new-privileges"] = Case(
    DOCKER_GOOD,
    [with_props(postgres, securityOpts=[])],
    [("postgres", "securityOpts must include 'no-new-privileges:true'")],
)
CASES["docker-healthcheck"] = Case(
    DOCKER_GOOD,
    [with_props(postgres, healthcheck=None)],
    [("postgres", "healthcheck.tests must define a health check")],
)
CASES["docker-object-store-encrypted"] = Case(
    DOCKER_GOOD,
    [
        with_props(mlflow, envs=["MLFLOW_BOOT_CREATE_BUCKET=mlflow"]),
        with_props(minio, uploads=minio.props["uploads"][:1]),
        with_props(seaweedfs, uploads=seaweedfs.props["uploads"][:1]),
    ],
    [
        (
            "mlflow-0",
            "creates bucket 'mlflow' without a default encryption: set MLFLOW_BOOT_BUCKET_ENCRYPTION to one of AES256, aws:kms",
        ),
        (
            "minio",
            "the object store gets no encryption key file (MinIO: an upload at MINIO_KMS_SECRET_KEY_FILE; SeaweedFS: /etc/seaweedfs/security.toml)",
        ),
        (
            "seaweedfs",
            "the object store gets no encryption key file (MinIO: an upload at MINIO_KMS_SECRET_KEY_FILE; SeaweedFS: /etc/seaweedfs/security.toml)",
        ),
    ],
)

# ---- AWS Backup -------------------------------------------------------------------------------
VAULT = "aws:backup/vault:Vault"
PLAN = "aws:backup/plan:Plan"
SELECTION = "aws:backup/selection:Selection"
vault = res(VAULT, "vault", {"kmsKeyArn": "arn:aws:kms:eu-west-1:123456789012:key/backup", "forceDestroy": False})
DAILY = {"ruleName": "daily", "targetVaultName": "vault-1a2b3c", "schedule": "cron(0 6 * * ? *)",
         "lifecycle": {"deleteAfter": 35}}  # fmt: skip
plan = res(PLAN, "plan", {"rules": [DAILY]})
selection = res(SELECTION, "selection", {"planId": "plan-id", "resources": ["arn:aws:rds:eu-west-1:123456789012:db:x"]},
                deps={"resources": [db], "planId": [plan]})  # fmt: skip
CASES["backup-vault-cmk"] = Case(
    [vault],
    [
        with_props(vault, kmsKeyArn=None),
        another(vault, "aws-managed", kmsKeyArn="arn:aws:kms:eu-west-1:123456789012:alias/aws/backup"),
    ],
    [
        ("vault", "kmsKeyArn must name a customer-managed key (unset: the AWS managed key aws/backup)"),
        ("aws-managed", "kmsKeyArn is the AWS managed key aws/backup; use a customer-managed key"),
    ],
)
CASES["backup-plan-retention"] = Case(
    [plan, another(plan, "with-copy", rules=[{**DAILY, "copyActions": [{"destinationVaultArn": "arn:x",
                                                                        "lifecycle": {"deleteAfter": 365}}]}])],
    [
        with_props(plan, rules=[{**DAILY, "lifecycle": {"deleteAfter": 1}}]),
        another(plan, "short-copy", rules=[{**DAILY, "copyActions": [{"destinationVaultArn": "arn:x",
                                                                      "lifecycle": {"deleteAfter": 3}}]}]),
    ],
    [
        ("plan", "rule 'daily' keeps recovery points 1 days; keep them at least 7"),
        ("short-copy", "rule 'daily' copy keeps recovery points 3 days; keep them at least 7"),
    ],
)  # fmt: skip
CASES["rds-in-backup-plan"] = Case(
    [db, params, plan, selection],
    # A selection of the bucket only: the engine says its resources came from no instance.
    [
        db,
        params,
        plan,
        res(
            SELECTION,
            "selection",
            {"planId": "plan-id", "resources": ["arn:aws:s3:::bucket"]},
            deps={"resources": [], "planId": [plan]},
        ),
    ],
    [("db", "Instance 'db' has no AWS Backup selection naming it")],
)


# ---- ElastiCache --------------------------------------------------------------------------------
REPLICATION_GROUP = "aws:elasticache/replicationGroup:ReplicationGroup"
cache = res(REPLICATION_GROUP, "jobs", {
    "engine": "valkey", "transitEncryptionEnabled": True, "transitEncryptionMode": "required",
    "atRestEncryptionEnabled": True, "kmsKeyId": "arn:aws:kms:eu-west-1:123456789012:key/jobs",
    "authToken": "0123456789abcdef0123456789abcdef", "subnetGroupName": "mlflow-prod-jobs",
    "securityGroupIds": ["sg-cache"],
})  # fmt: skip


def cache_case(violations: list[str], **changes: Any) -> Case:
    return Case([cache], [with_props(cache, **changes)], [("jobs", v) for v in violations])


CASES["elasticache-encrypted-in-transit"] = cache_case(
    ["transitEncryptionEnabled must be true", "transitEncryptionMode must be required, not preferred"],
    transitEncryptionEnabled=False, transitEncryptionMode="preferred",
)  # fmt: skip
CASES["elasticache-encrypted-at-rest"] = cache_case(
    ["atRestEncryptionEnabled must be true", "kmsKeyId must name a customer-managed key"],
    atRestEncryptionEnabled=False, kmsKeyId=None,
)  # fmt: skip
CASES["elasticache-auth"] = cache_case(["authToken or userGroupIds must be set"], authToken=None)
CASES["elasticache-private"] = cache_case(
    ["subnetGroupName must name the stack's private subnet group",
     "securityGroupIds must name the stack's own security groups"],
    subnetGroupName=None, securityGroupIds=[],
)  # fmt: skip
