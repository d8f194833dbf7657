"""The whole prod program under Pulumi mocks, for Pulumi.prod.yaml as committed.

Each test reads the inputs the program registered, i.e. what `pulumi up -s prod` would ask AWS for.
"""

from __future__ import annotations

import json
import re
import shlex

import pytest

from components.config import ConfigError, parse_settings
from components.config.aws import MODERN_TLS_POLICIES
from components.image import build_context_hash, image_tag
from pulumi_mocks import REPO_ROOT, is_secret, reveal, run_program, secret_paths, stack_config
from tests.mocks.aws_fixtures import ACCOUNT, REGION, aws_calls, aws_outputs

PROD = stack_config("prod")
BUCKET = "aws:s3/bucket:Bucket"
SG = "aws:ec2/securityGroup:SecurityGroup"
INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
EGRESS = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"
LISTENER = "aws:lb/listener:Listener"


def run_prod(secret_keys: tuple[str, ...] = (), raise_errors: bool = True, **overrides: dict):
    """Run the program with the committed prod config, sections replaced by `overrides`;
    `secret_keys`: the config keys set with `pulumi config set --secret`."""
    config = dict(PROD)
    for section, value in overrides.items():
        key = f"mlflow-platform:{section}"
        config[key] = json.dumps(value) if value is not None else None
        if value is None:
            del config[key]
    return run_program(config, "prod", aws_outputs, aws_calls, raise_errors=raise_errors, secret_keys=secret_keys)


OIDC = {
    "issuer": "https://login.example.com", "authorizationEndpoint": "https://login.example.com/authorize",
    "tokenEndpoint": "https://login.example.com/token", "userInfoEndpoint": "https://login.example.com/userinfo",
    "clientId": "mlflow", "clientSecret": "not-in-plain-text",
}  # fmt: skip
COGNITO = {
    "userPoolArn": f"arn:aws:cognito-idp:{REGION}:{ACCOUNT}:userpool/{REGION}_AbCdEf123",
    "userPoolClientId": "abc123", "userPoolDomain": "auth.example.com",
}  # fmt: skip
# What `pulumi config set --secret --path mlflow-platform:auth.oidc.clientSecret ...` marks secret.
AUTH_IS_SECRET = ("mlflow-platform:auth",)


@pytest.fixture(scope="module")
def oidc_run():
    return run_prod(secret_keys=AUTH_IS_SECRET, auth={"mode": "oidc", "oidc": OIDC})


def prod_section(section: str) -> dict:
    return json.loads(PROD[f"mlflow-platform:{section}"])


@pytest.fixture(scope="module")
def run():
    return run_prod()


@pytest.fixture(scope="module")
def settings():
    raw = {k.split(":", 1)[1]: json.loads(v) if v[:1] in "[{" else v for k, v in PROD.items() if k.startswith("mlflow-platform:")}
    return parse_settings(raw)


def container(run) -> dict:
    definitions = json.loads(reveal(run.one("aws:ecs/taskDefinition:TaskDefinition").inputs["containerDefinitions"]))
    assert len(definitions) == 1
    return definitions[0]


def log_group_name(group) -> str:
    """The name AWS gives a log group: as given, or its prefix plus a unique part."""
    return aws_outputs(group.typ, group.name, group.plain)["name"]


def policy(resource) -> dict:
    return json.loads(reveal(resource.inputs["policy"]))


def statements(doc: dict, sid: str) -> dict:
    return next(s for s in doc["Statement"] if s["Sid"] == sid)


def sg_id(run, role: str) -> str:
    return f"{run.one(SG, f'-{role}').name}-id"


def rules_of(run, typ: str, group: str) -> list[dict]:
    return [r.plain for r in run.of_type(typ) if r.plain["securityGroupId"] == group]


# --- the committed config and the providers ----------------------------------------------------


def test_committed_prod_config_targets_aws_and_disables_default_providers():
    assert PROD["mlflow-platform:target"] == "aws"
    assert json.loads(PROD["pulumi:disable-default-providers"]) == ["*"]


def test_every_custom_resource_has_an_explicit_provider(run):
    providers = {r.typ for r in run.custom if r.typ.startswith("pulumi:providers:")}
    assert providers == {"pulumi:providers:aws", "pulumi:providers:docker", "pulumi:providers:random"}
    missing = [(r.typ, r.name) for r in run.custom if not r.typ.startswith("pulumi:providers:") and not r.provider]
    assert missing == []
    for r in run.custom:
        if r.provider:
            package = r.typ.split(":")[0]
            assert re.search(rf"[:$]pulumi:providers:{package}::", r.provider), (r.typ, r.provider)


def test_aws_provider_is_pinned_to_the_region_and_account(run):
    provider = run.one("pulumi:providers:aws").plain
    assert provider["region"] == REGION
    assert json.loads(provider["allowedAccountIds"]) == [ACCOUNT]
    tags = json.loads(provider["defaultTags"])["tags"]
    assert tags["project"] == "mlflow-platform" and tags["stack"] == "prod"


def test_components_use_the_aws_type_tokens(run):
    components = {r.typ for r in run.resources if not r.custom}
    assert components >= {
        "mlflow-platform:aws:Platform", "mlflow-platform:aws:Network", "mlflow-platform:aws:SecurityGroups",
        "mlflow-platform:aws:MetadataStore", "mlflow-platform:aws:ArtifactStore", "mlflow-platform:aws:ImageRegistry",
        "mlflow-platform:aws:LoadBalancer", "mlflow-platform:aws:TrackingServer", "mlflow-platform:aws:LogArchive",
    }  # fmt: skip
    assert all(t.startswith("mlflow-platform:aws:") for t in components)


# --- network -------------------------------------------------------------------------------------


def test_network_spans_two_azs_with_public_private_subnets_nat_and_s3_endpoint(run):
    subnets = [r.plain for r in run.of_type("aws:ec2/subnet:Subnet")]
    public = [s for s in subnets if s["tags"]["tier"] == "public"]
    private = [s for s in subnets if s["tags"]["tier"] == "private"]
    assert len(public) == len(private) == 2
    assert {s["availabilityZone"] for s in public} == {s["availabilityZone"] for s in private} == {"eu-west-1a", "eu-west-1b"}
    assert not any(s["mapPublicIpOnLaunch"] for s in subnets)
    assert len(run.of_type("aws:ec2/natGateway:NatGateway")) == 2
    nat_routes = [r.plain for r in run.of_type("aws:ec2/route:Route") if r.plain.get("natGatewayId")]
    assert len(nat_routes) == 2 and all(r["destinationCidrBlock"] == "0.0.0.0/0" for r in nat_routes)
    endpoint = run.one("aws:ec2/vpcEndpoint:VpcEndpoint", "mlflow-prod-s3").plain
    assert endpoint["serviceName"] == f"com.amazonaws.{REGION}.s3" and endpoint["vpcEndpointType"] == "Gateway"
    assert len(endpoint["routeTableIds"]) == 2
    default_sg = run.one("aws:ec2/defaultSecurityGroup:DefaultSecurityGroup").plain
    assert default_sg.get("ingress", []) == [] and default_sg.get("egress", []) == []
    flow = run.one("aws:ec2/flowLog:FlowLog").plain
    assert flow["trafficType"] == "ALL" and flow["logDestinationType"] == "s3"


def test_existing_vpc_is_used_as_given():
    net = {"existingVpcId": "vpc-0123456789abcdef0",
           "existingPublicSubnetIds": ["subnet-0000000000000000a", "subnet-0000000000000000b"],
           "existingPrivateSubnetIds": ["subnet-0000000000000000c", "subnet-0000000000000000d"]}  # fmt: skip
    run = run_prod(aws={"region": REGION, "network": net})
    assert run.of_type("aws:ec2/vpc:Vpc") == [] and run.of_type("aws:ec2/subnet:Subnet") == []
    service = run.one("aws:ecs/service:Service").plain
    assert service["networkConfiguration"]["subnets"] == net["existingPrivateSubnetIds"]
    assert run.one("aws:lb/loadBalancer:LoadBalancer").plain["subnets"] == net["existingPublicSubnetIds"]
    assert run.one("aws:rds/subnetGroup:SubnetGroup").plain["subnetIds"] == net["existingPrivateSubnetIds"]
    assert {r.plain["vpcId"] for r in run.of_type(SG)} == {net["existingVpcId"]}


# --- security groups -----------------------------------------------------------------------------


def test_world_reaches_only_80_and_443_on_the_alb(run):
    alb = sg_id(run, "alb")
    ingress = rules_of(run, INGRESS, alb)
    assert sorted((r["fromPort"], r["toPort"], r["cidrIpv4"]) for r in ingress) == [(80, 80, "0.0.0.0/0"), (443, 443, "0.0.0.0/0")]
    assert [(r["fromPort"], r["referencedSecurityGroupId"]) for r in rules_of(run, EGRESS, alb)] == [(5000, sg_id(run, "tasks"))]


def alb_egress(run) -> list[tuple]:
    return sorted((r["ipProtocol"], r["fromPort"], r["toPort"], r.get("referencedSecurityGroupId") or r.get("cidrIpv4"))
                  for r in rules_of(run, EGRESS, sg_id(run, "alb")))  # fmt: skip


@pytest.mark.parametrize("mode", ["oidc", "cognito"])
def test_alb_reaches_the_identity_provider_over_https_when_it_signs_users_in(mode, oidc_run):
    run = oidc_run if mode == "oidc" else run_prod(auth={"mode": "cognito", "cognito": COGNITO})
    # The ALB redeems the sign-in code at the token endpoint and reads userinfo itself.
    assert alb_egress(run) == [("tcp", 443, 443, "0.0.0.0/0"), ("tcp", 5000, 5000, sg_id(run, "tasks"))]
    (idp,) = [r for r in rules_of(run, EGRESS, sg_id(run, "alb")) if r["fromPort"] == 443]
    assert "identity provider" in idp["description"]
    # Nothing else opens up: the world still reaches only 80/443 of the ALB.
    assert sorted(r["fromPort"] for r in rules_of(run, INGRESS, sg_id(run, "alb"))) == [80, 443]


def test_alb_has_no_internet_egress_without_sign_in_at_the_alb(run):
    assert alb_egress(run) == [("tcp", 5000, 5000, sg_id(run, "tasks"))]  # basic-auth: the tasks only
    internal = run_prod(auth={"mode": "none"}, loadBalancer={**prod_section("loadBalancer"), "internal": True})
    assert alb_egress(internal) == [("tcp", 5000, 5000, sg_id(internal, "tasks"))]


def task_egress(run) -> list[tuple]:
    return sorted((r["fromPort"], r.get("referencedSecurityGroupId") or r.get("cidrIpv4") or r.get("prefixListId"))
                  for r in rules_of(run, EGRESS, sg_id(run, "tasks")))  # fmt: skip


def test_tasks_accept_only_the_alb_and_reach_only_the_database_and_the_aws_endpoints(run):
    tasks, db = sg_id(run, "tasks"), sg_id(run, "db")
    ingress = rules_of(run, INGRESS, tasks)
    assert [(r["fromPort"], r["toPort"], r.get("referencedSecurityGroupId"), r.get("cidrIpv4")) for r in ingress] == [
        (5000, 5000, sg_id(run, "alb"), None)
    ]
    # No internet: HTTPS to the interface endpoints' group and to S3's prefix list (gateway endpoint).
    s3_prefix_list = aws_outputs("aws:ec2/vpcEndpoint:VpcEndpoint", "s3", {"vpcEndpointType": "Gateway"})["prefixListId"]
    assert task_egress(run) == sorted([(443, sg_id(run, "endpoints")), (443, s3_prefix_list), (5432, db)])
    assert [(r["fromPort"], r.get("referencedSecurityGroupId")) for r in rules_of(run, INGRESS, sg_id(run, "endpoints"))] \
        == [(443, tasks)]
    assert rules_of(run, EGRESS, sg_id(run, "endpoints")) == []


def test_interface_endpoints_cover_what_the_tasks_call_with_private_dns(run):
    endpoints = [r.plain for r in run.of_type("aws:ec2/vpcEndpoint:VpcEndpoint") if r.plain["vpcEndpointType"] == "Interface"]
    services = sorted(e["serviceName"].removeprefix(f"com.amazonaws.{REGION}.") for e in endpoints)
    assert services == ["ecr.api", "ecr.dkr", "kms", "logs", "secretsmanager"]
    private = [s.name for s in run.of_type("aws:ec2/subnet:Subnet") if s.plain["tags"]["tier"] == "private"]
    for endpoint in endpoints:
        assert endpoint["privateDnsEnabled"] is True
        assert endpoint["securityGroupIds"] == [sg_id(run, "endpoints")]
        assert endpoint["subnetIds"] == [f"{name}-id" for name in private]


def test_the_s3_gateway_endpoint_reaches_only_the_artifact_bucket_and_ecr_layers(run):
    bucket_arn = f"arn:aws:s3:::{artifact(run, BUCKET).name}-0a1b2c3"
    doc = json.loads(reveal(run.one("aws:ec2/vpcEndpoint:VpcEndpoint", "mlflow-prod-s3").inputs["policy"]))
    resources = sorted(r for s in doc["Statement"] for r in s["Resource"])
    assert resources == sorted([bucket_arn, f"{bucket_arn}/*", f"arn:aws:s3:::prod-{REGION}-starport-layer-bucket/*"])
    assert all(s["Effect"] == "Allow" and s["Principal"] == "*" for s in doc["Statement"])
    assert statements(doc, "EcrImageLayers")["Action"] == ["s3:GetObject"]


def test_without_interface_endpoints_tasks_reach_https_through_nat():
    run = run_prod(aws={"region": REGION, "allowedAccountIds": [ACCOUNT], "network": {"interfaceEndpoints": False}})
    assert [r for r in run.of_type("aws:ec2/vpcEndpoint:VpcEndpoint") if r.plain["vpcEndpointType"] == "Interface"] == []
    assert task_egress(run) == [(443, "0.0.0.0/0"), (5432, sg_id(run, "db"))]


def test_database_is_reachable_only_from_the_tasks_on_5432(run):
    db = sg_id(run, "db")
    ingress = rules_of(run, INGRESS, db)
    assert [(r["ipProtocol"], r["fromPort"], r["toPort"], r.get("referencedSecurityGroupId"), r.get("cidrIpv4")) for r in ingress] == [
        ("tcp", 5432, 5432, sg_id(run, "tasks"), None)
    ]
    assert rules_of(run, EGRESS, db) == []
    # No inline rules anywhere: every flow is one of the rule resources checked above.
    assert all(not r.plain.get("ingress") and not r.plain.get("egress") for r in run.of_type(SG))


# --- metadata store ------------------------------------------------------------------------------


def test_rds_is_private_encrypted_multi_az_backed_up_and_protected(run):
    db = run.one("aws:rds/instance:Instance")
    plain = db.plain
    assert plain["engine"] == "postgres"
    assert plain["storageEncrypted"] is True and plain["kmsKeyId"]
    assert plain["publiclyAccessible"] is False
    assert plain["multiAz"] is True
    assert plain["backupRetentionPeriod"] == prod_section("database")["backupRetentionDays"] >= 7
    assert plain["deletionProtection"] is True
    # The identifier carries a suffix drawn once per stack: no leftover of an earlier stack collides.
    assert re.fullmatch(r"mlflow-prod-[a-z0-9]{6}", plain["identifier"]), plain["identifier"]
    assert plain["skipFinalSnapshot"] is False and plain["finalSnapshotIdentifier"] == f"{plain['identifier']}-final"
    assert set(plain["enabledCloudwatchLogsExports"]) == {"postgresql", "upgrade"}
    assert plain["vpcSecurityGroupIds"] == [sg_id(run, "db")]
    assert plain["caCertIdentifier"].startswith("rds-ca-")


def test_rds_parameter_group_forces_tls(run):
    group = run.one("aws:rds/parameterGroup:ParameterGroup").plain
    assert group["family"] == "postgres17"
    params = {p["name"]: p["value"] for p in group["parameters"]}
    assert params["rds.force_ssl"] == "1" and params["ssl_min_protocol_version"] == "TLSv1.2"
    assert run.one("aws:rds/instance:Instance").plain["parameterGroupName"] == "mlflow-prod-db"


def test_rds_allows_every_worker_of_every_task_its_full_pool(run):
    from components.specs.mlflow_server import DB_CONNECTIONS_PER_WORKER, DB_CONNECTIONS_HEADROOM

    settings = parse_settings({k.split(":", 1)[1]: json.loads(v) if v.startswith(("{", "[")) else v
                               for k, v in PROD.items() if k.startswith("mlflow-platform:")})
    params = {p["name"]: p for p in run.one("aws:rds/parameterGroup:ParameterGroup").plain["parameters"]}
    expected = settings.tracking.workers * settings.tasks.max_count * DB_CONNECTIONS_PER_WORKER + DB_CONNECTIONS_HEADROOM
    assert params["max_connections"]["value"] == str(expected)
    assert params["max_connections"]["applyMethod"] == "pending-reboot"


def test_rds_log_groups_exist_with_retention_before_rds_creates_them(run):
    groups = {log_group_name(r): r.plain for r in run.of_type("aws:cloudwatch/logGroup:LogGroup")}
    for log in ("postgresql", "upgrade"):
        group = groups[f"/aws/rds/instance/{run.one('aws:rds/instance:Instance').plain['identifier']}/{log}"]
        assert group["retentionInDays"] == 90 and group["kmsKeyId"]


def test_database_password_is_generated_secret_and_stored_in_secrets_manager(run):
    db = run.one("aws:rds/instance:Instance")
    assert is_secret(db.inputs["password"])
    version = run.one("aws:secretsmanager/secretVersion:SecretVersion", "db-credentials")
    assert is_secret(version.inputs["secretString"])
    stored = json.loads(reveal(version.inputs["secretString"]))
    assert stored == {"username": "mlflow", "password": reveal(db.inputs["password"])}
    secret = run.one("aws:secretsmanager/secret:Secret", "db-credentials").plain
    assert secret["kmsKeyId"].startswith(f"arn:aws:kms:{REGION}:{ACCOUNT}:key/")


# --- artifact store ------------------------------------------------------------------------------


def artifact(run, typ: str):
    return run.one(typ, "artifacts")


def test_artifact_bucket_blocks_public_access_and_acls(run):
    pab = artifact(run, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock").plain
    assert all(pab[k] is True for k in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"))
    ownership = artifact(run, "aws:s3/bucketOwnershipControls:BucketOwnershipControls").plain
    assert ownership["rule"]["objectOwnership"] == "BucketOwnerEnforced"
    assert artifact(run, BUCKET).plain.get("forceDestroy") in (None, False)


def test_artifact_bucket_is_sse_kms_with_bucket_key_and_versioned(run):
    sse = artifact(run, "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration").plain
    (rule,) = sse["rules"]
    assert rule["applyServerSideEncryptionByDefault"]["sseAlgorithm"] == "aws:kms"
    assert rule["applyServerSideEncryptionByDefault"]["kmsMasterKeyId"] == f"arn:aws:kms:{REGION}:{ACCOUNT}:key/mlflow-prod-artifacts-key"
    assert rule["bucketKeyEnabled"] is True
    versioning = artifact(run, "aws:s3/bucketVersioning:BucketVersioning").plain
    assert versioning["versioningConfiguration"]["status"] == "Enabled"
    key = run.one("aws:kms/key:Key", "artifacts").plain
    assert key["enableKeyRotation"] is True


def test_artifact_bucket_lifecycle_aborts_uploads_and_expires_old_versions(run):
    rules = {r["id"]: r for r in artifact(run, "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration").plain["rules"]}
    assert rules["abort-incomplete-multipart-uploads"]["abortIncompleteMultipartUpload"]["daysAfterInitiation"] == 7
    assert rules["expire-noncurrent-versions"]["noncurrentVersionExpiration"]["noncurrentDays"] == 90
    assert all(r["status"] == "Enabled" for r in rules.values())


def test_artifact_bucket_policy_denies_plain_http_and_everyone_but_the_task_role_and_operators(run):
    bucket_arn = f"arn:aws:s3:::{artifact(run, BUCKET).name}-0a1b2c3"
    doc = policy(artifact(run, "aws:s3/bucketPolicy:BucketPolicy"))
    tls = statements(doc, "DenyInsecureTransport")
    assert tls["Effect"] == "Deny" and tls["Principal"] == "*" and tls["Action"] == ["s3:*"]
    assert tls["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert tls["Resource"] == [bucket_arn, f"{bucket_arn}/*"]
    others = statements(doc, "OnlyTheServerAndOperatorsTouchObjects")
    assert others["Effect"] == "Deny" and {"s3:GetObject", "s3:PutObject", "s3:DeleteObject"} <= set(others["Action"])
    task_role_arn = f"arn:aws:iam::{ACCOUNT}:role/mlflow-prod-task"
    # The deploy role by default: backups, restores and a forceDestroy are not locked out.
    deploy_role_arn = f"arn:aws:iam::{ACCOUNT}:role/mlflow-platform-deploy"
    assert others["Condition"] == {"ArnNotEquals": {"aws:PrincipalArn": [task_role_arn, deploy_role_arn]}}
    assert all(s["Effect"] == "Deny" for s in doc["Statement"])


def test_configured_operator_roles_replace_the_default_in_the_bucket_exception():
    operators = [f"arn:aws:iam::{ACCOUNT}:role/backup", f"arn:aws:iam::{ACCOUNT}:role/admins/platform-admin"]
    run = run_prod(artifactStore={**prod_section("artifactStore"), "operatorRoleArns": operators})
    doc = policy(artifact(run, "aws:s3/bucketPolicy:BucketPolicy"))
    allowed = statements(doc, "OnlyTheServerAndOperatorsTouchObjects")["Condition"]["ArnNotEquals"]["aws:PrincipalArn"]
    assert allowed == [f"arn:aws:iam::{ACCOUNT}:role/mlflow-prod-task", *operators]


def test_an_operator_that_is_not_a_role_arn_is_refused_before_anything_is_created():
    run = run_prod(raise_errors=False, artifactStore={"operatorRoleArns": ["arn:aws:iam::123456789012:user/alice"]})
    assert isinstance(run.error, ConfigError) and "artifactStore.operatorRoleArns.0" in str(run.error)
    assert run.resources == []


def test_only_the_task_role_is_granted_the_artifact_bucket(run):
    bucket_arn = f"arn:aws:s3:::{artifact(run, BUCKET).name}-0a1b2c3"
    grants = [r for r in run.of_type("aws:iam/rolePolicy:RolePolicy") if bucket_arn in json.dumps(r.plain)]
    assert [g.plain["role"] for g in grants] == ["mlflow-prod-task-id"]
    doc = policy(grants[0])
    assert statements(doc, "ReadWriteObjects")["Resource"] == [f"{bucket_arn}/*"]
    assert statements(doc, "ListTheBucket")["Resource"] == [bucket_arn]
    kms = statements(doc, "UseTheBucketKeyThroughS3")
    assert kms["Condition"] == {"StringEquals": {"kms:ViaService": f"s3.{REGION}.amazonaws.com"}}
    assert not any("*" == r for s in doc["Statement"] for r in s["Resource"])


def test_log_bucket_is_private_sse_s3_and_expiring(run):
    logs = run.one(BUCKET, "access-logs")
    pab = run.one("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", "access-logs").plain
    assert all(pab[k] is True for k in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"))
    sse = run.one("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration", "access-logs").plain
    assert sse["rules"][0]["applyServerSideEncryptionByDefault"]["sseAlgorithm"] == "AES256"  # ALB logs need SSE-S3
    doc = policy(run.one("aws:s3/bucketPolicy:BucketPolicy", "access-logs"))
    assert statements(doc, "DenyInsecureTransport")["Effect"] == "Deny"
    # Only log delivery may write, and only under its prefixes.
    writes = [s for s in doc["Statement"] if s["Effect"] == "Allow"]
    assert writes and all(s["Principal"] != "*" for s in writes)
    assert all(r.endswith("/*") and "/AWSLogs/" in r for s in writes if s["Action"] == ["s3:PutObject"] for r in s["Resource"])
    rules = {r["id"]: r for r in run.one("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration", "access-logs").plain["rules"]}
    assert rules["expire-logs"]["expiration"]["days"] == 365
    assert run.one("aws:lb/loadBalancer:LoadBalancer").plain["accessLogs"]["bucket"] == f"{logs.name}-0a1b2c3"


# --- IAM -----------------------------------------------------------------------------------------


def test_roles_trust_only_ecs_tasks_of_this_account(run):
    for role in run.of_type("aws:iam/role:Role"):
        (trust,) = policy_doc(role.plain["assumeRolePolicy"])["Statement"]
        assert trust["Principal"] == {"Service": "ecs-tasks.amazonaws.com"} and trust["Action"] == "sts:AssumeRole"
        assert trust["Condition"]["StringEquals"] == {"aws:SourceAccount": ACCOUNT}
        assert trust["Condition"]["ArnLike"] == {"aws:SourceArn": f"arn:aws:ecs:{REGION}:{ACCOUNT}:*"}
        assert not role.plain.get("managedPolicyArns") and not role.plain.get("inlinePolicies")


def policy_doc(text: str) -> dict:
    return json.loads(text)


def test_execution_role_may_only_pull_read_its_secrets_and_log(run):
    doc = policy(run.one("aws:iam/rolePolicy:RolePolicy", "execution"))
    actions = {a for s in doc["Statement"] for a in s["Action"]}
    assert actions == {
        "ecr:GetAuthorizationToken", "ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage",
        "logs:CreateLogStream", "logs:PutLogEvents", "secretsmanager:GetSecretValue", "kms:Decrypt",
    }  # fmt: skip
    wildcard = [s["Sid"] for s in doc["Statement"] if "*" in s["Resource"]]
    assert wildcard == ["EcrToken"]
    secret_arns = {r.name: f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{r.name}-AbCdEf"
                   for r in run.of_type("aws:secretsmanager/secret:Secret")}  # fmt: skip
    assert set(statements(doc, "ReadTheTaskSecrets")["Resource"]) == set(secret_arns.values())
    (group,) = [g for g in run.of_type("aws:cloudwatch/logGroup:LogGroup") if g.name == "mlflow-prod"]
    assert group.plain["namePrefix"] == "/mlflow/prod/tracking-server-" and "name" not in group.plain
    group_name = aws_outputs(group.typ, group.name, group.plain)["name"]
    assert statements(doc, "WriteContainerLogs")["Resource"] == [
        f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{group_name}:log-stream:*"
    ]
    assert container(run)["logConfiguration"]["options"]["awslogs-group"] == group_name


# --- registry and image --------------------------------------------------------------------------


def test_ecr_repository_scans_on_push_and_has_immutable_tags(run):
    repo = run.one("aws:ecr/repository:Repository").plain
    assert repo["imageTagMutability"] == "IMMUTABLE"
    assert repo["imageScanningConfiguration"]["scanOnPush"] is True


def test_ecr_keeps_the_last_30_images_for_rollbacks(run):
    policy = json.loads(run.one("aws:ecr/lifecyclePolicy:LifecyclePolicy").plain["policy"])
    (rule,) = policy["rules"]
    assert rule["selection"]["countType"] == "imageCountMoreThan"
    assert rule["selection"]["countNumber"] == 30
    assert rule["action"]["type"] == "expire"


def test_every_build_gets_its_own_tag_kept_while_the_build_context_is_unchanged(run):
    """Immutable tags and `<version>-<context hash>` repeat on a revert or a lost state: a random
    suffix, drawn again whenever the context hash changes and otherwise kept in the state."""
    suffix = run.one("random:index/randomId:RandomId")
    assert suffix.parent == run.one("mlflow-platform:aws:ImageRegistry").urn
    assert "$pulumi:providers:random::mlflow-prod-random::" in suffix.provider
    assert suffix.plain["keepers"] == {"buildContext": build_context_hash()}
    assert suffix.plain["byteLength"] == 4
    image = run.one("docker:index/image:Image")
    drawn = aws_outputs(suffix.typ, suffix.name, suffix.inputs)["hex"]
    repository_url = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/{run.one('aws:ecr/repository:Repository').name}"
    assert image.plain["imageName"] == f"{repository_url}:{image_tag()}-{drawn}"
    assert run.depends_on(image, suffix)
    # The task still runs the pushed digest, never the tag.
    assert container(run)["image"] == f"{repository_url}@sha256:{'ab' * 32}"


def test_image_is_built_for_fargate_and_pushed_with_a_secret_token(run):
    image = run.one("docker:index/image:Image")
    plain = image.plain
    assert plain["build"]["platform"] == "linux/amd64"
    assert plain["imageName"].startswith(f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/")
    assert plain["skipPush"] is False
    # The ECR token keeps the registry block secret as a whole.
    assert secret_paths(image.inputs) == ["registry"]
    assert plain["registry"]["server"] == plain["imageName"].split(":")[0]


# --- tracking server -----------------------------------------------------------------------------


def test_task_definition_runs_the_image_digest_non_root_on_a_read_only_root(run):
    c = container(run)
    assert re.fullmatch(rf"{ACCOUNT}\.dkr\.ecr\.{REGION}\.amazonaws\.com/[\w-]+@sha256:[0-9a-f]{{64}}", c["image"])
    assert c["readonlyRootFilesystem"] is True
    assert c["user"] == "10001:10001"
    assert c["linuxParameters"]["capabilities"]["drop"] == ["ALL"]
    assert "privileged" not in c


def test_task_definition_passes_secrets_as_ecs_secrets_never_as_environment(run):
    c = container(run)
    env = {e["name"]: e["value"] for e in c["environment"]}
    secrets = {s["name"]: s["valueFrom"] for s in c["secrets"]}
    assert set(secrets) == {"MLFLOW_DB_PASSWORD", "MLFLOW_AUTH_ADMIN_PASSWORD", "MLFLOW_FLASK_SERVER_SECRET_KEY"}
    assert not set(env) & set(secrets)
    assert not any(re.search("PASSWORD|SECRET|TOKEN", name) and not name.endswith("_PATH") for name in env)
    # Pinned to the version the program wrote: <arn>:<json key>:<stage, empty>:<version id>.
    versions = {v.name: v for v in run.of_type("aws:secretsmanager/secretVersion:SecretVersion")}
    db_version = aws_outputs(versions["mlflow-prod-db-credentials"].typ, "mlflow-prod-db-credentials", {})
    assert secrets["MLFLOW_DB_PASSWORD"] == (
        f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:mlflow-prod-db-credentials-AbCdEf:password::"
        f"{db_version['versionId']}")
    assert all(re.fullmatch(r"arn:aws:secretsmanager:[^:]+:\d{12}:secret:[\w-]+:\w+::[0-9a-f-]{36}", value)
               for value in secrets.values()), secrets
    assert env["MLFLOW_DB_SSLMODE"] == "verify-full" and env["MLFLOW_DB_SSLROOTCERT"].endswith(".pem")
    identifier = run.one("aws:rds/instance:Instance").plain["identifier"]
    assert env["MLFLOW_DB_HOST"] == f"{identifier}.abcdefghijkl.{REGION}.rds.amazonaws.com"
    # The task definition as a whole holds no secret value (it would be in plain ECS API output).
    assert secret_paths(run.one("aws:ecs/taskDefinition:TaskDefinition").inputs) == []


def test_no_task_definition_is_registered_before_its_secret_values_exist(run):
    """ECS fetches the secrets when a task starts: the values must exist by then."""
    task = run.one("aws:ecs/taskDefinition:TaskDefinition")
    versions = run.of_type("aws:secretsmanager/secretVersion:SecretVersion")
    assert len(versions) == 2
    for version in versions:
        assert version.urn in task.property_dependencies["containerDefinitions"], version.name


def test_scratch_is_a_writable_ephemeral_volume_sized_from_config(run):
    task = run.one("aws:ecs/taskDefinition:TaskDefinition").plain
    c = container(run)
    env = {e["name"]: e["value"] for e in c["environment"]}
    assert task["ephemeralStorage"]["sizeInGib"] == prod_section("tasks")["ephemeralStorageGib"]
    (mount,) = c["mountPoints"]
    # The image's VOLUME (owned by uid 10001): on Fargate only that path gives a writable task volume.
    assert mount["containerPath"] == "/scratch" == env["TMPDIR"] == env["HOME"]
    assert mount["readOnly"] is False
    assert task["volumes"] == [{"name": mount["sourceVolume"]}]  # no host path: task-local ephemeral storage


def test_task_definition_is_fargate_with_separate_roles(run):
    task = run.one("aws:ecs/taskDefinition:TaskDefinition").plain
    assert task["requiresCompatibilities"] == ["FARGATE"] and task["networkMode"] == "awsvpc"
    assert task["taskRoleArn"].endswith("role/mlflow-prod-task")
    assert task["executionRoleArn"].endswith("role/mlflow-prod-execution")
    assert (task["cpu"], task["memory"]) == ("1024", "4096")


def test_container_logs_go_to_awslogs_with_retention(run):
    c = container(run)
    log = c["logConfiguration"]
    assert log["logDriver"] == "awslogs" and log["options"]["awslogs-region"] == REGION
    group = next(r.plain for r in run.of_type("aws:cloudwatch/logGroup:LogGroup")
                 if log_group_name(r) == log["options"]["awslogs-group"])  # fmt: skip
    assert group["retentionInDays"] == prod_section("logs")["retentionDays"]
    assert group["kmsKeyId"]


def test_container_runs_the_spec_command_and_health_check(run, settings):
    from components.aws.platform import server_spec

    c = container(run)
    env = {e["name"]: e["value"] for e in c["environment"]}
    bucket = f"{artifact(run, BUCKET).name}-0a1b2c3"
    spec = server_spec(settings, env["MLFLOW_DB_HOST"], bucket)
    assert c["entryPoint"] + c["command"] == list(spec.argv)
    assert {k: env[k] for k in spec.env} == dict(spec.env)
    assert c["healthCheck"] == {
        "command": spec.health.test,
        "interval": spec.health.interval_seconds,
        "timeout": spec.health.timeout_seconds,
        "retries": spec.health.retries,
        "startPeriod": spec.health.start_period_seconds,
    }
    assert c["portMappings"][0]["containerPort"] == spec.port
    assert f"s3://{bucket}/" in c["command"]


def test_service_runs_two_tasks_across_azs_with_circuit_breaker_rollback(run):
    service = run.one("aws:ecs/service:Service").plain
    assert service["desiredCount"] >= 2
    assert service["launchType"] == "FARGATE"
    assert service["deploymentCircuitBreaker"] == {"enable": True, "rollback": True}
    network = service["networkConfiguration"]
    assert network["assignPublicIp"] is False and network["securityGroups"] == [sg_id(run, "tasks")]
    private = [f"{r.name}-id" for r in run.of_type("aws:ec2/subnet:Subnet") if r.plain["tags"]["tier"] == "private"]
    assert sorted(network["subnets"]) == sorted(private)
    assert service["enableExecuteCommand"] is False
    assert service["loadBalancers"][0]["containerPort"] == 5000
    cluster = run.one("aws:ecs/cluster:Cluster").plain
    assert {"name": "containerInsights", "value": "enabled"} in cluster["settings"]


def test_service_autoscales_on_cpu_and_request_count(run):
    target = run.one("aws:appautoscaling/target:Target").plain
    assert (target["minCapacity"], target["maxCapacity"]) == (2, prod_section("tasks")["maxCount"])
    metrics = {}
    for p in run.of_type("aws:appautoscaling/policy:Policy"):
        config = p.plain["targetTrackingScalingPolicyConfiguration"]
        metrics[config["predefinedMetricSpecification"]["predefinedMetricType"]] = config["predefinedMetricSpecification"]
    assert set(metrics) == {"ECSServiceAverageCPUUtilization", "ALBRequestCountPerTarget"}
    assert re.fullmatch(r"app/.+/\w+/targetgroup/.+/\w+", metrics["ALBRequestCountPerTarget"]["resourceLabel"])


# --- load balancer -------------------------------------------------------------------------------


def test_alb_drops_invalid_headers_logs_and_outlasts_big_uploads(run):
    alb = run.one("aws:lb/loadBalancer:LoadBalancer").plain
    assert alb["dropInvalidHeaderFields"] is True
    assert alb["internal"] is False and alb["loadBalancerType"] == "application"
    assert alb["accessLogs"]["enabled"] is True
    assert alb["idleTimeout"] == prod_section("loadBalancer")["idleTimeoutSeconds"] >= 900
    assert alb["securityGroups"] == [sg_id(run, "alb")]
    public = [f"{r.name}-id" for r in run.of_type("aws:ec2/subnet:Subnet") if r.plain["tags"]["tier"] == "public"]
    assert sorted(alb["subnets"]) == sorted(public)
    assert alb["enableDeletionProtection"] is True


def test_uvicorn_keep_alive_outlasts_the_alb_idle_timeout(run):
    idle = run.one("aws:lb/loadBalancer:LoadBalancer").plain["idleTimeout"]
    command = container(run)["command"]
    opts = shlex.split(command[command.index("--uvicorn-opts") + 1])
    assert int(opts[opts.index("--timeout-keep-alive") + 1]) > idle


def test_http_listener_only_redirects_to_https(run):
    http = run.named("mlflow-prod-http").plain
    assert (http["port"], http["protocol"]) == (80, "HTTP")
    (action,) = http["defaultActions"]
    assert action["type"] == "redirect"
    assert action["redirect"] == {"protocol": "HTTPS", "port": "443", "statusCode": "HTTP_301"}


def test_https_listener_uses_the_configured_certificate_and_a_modern_tls_policy(run):
    https = run.named("mlflow-prod-https").plain
    assert (https["port"], https["protocol"]) == (443, "HTTPS")
    assert https["sslPolicy"] in MODERN_TLS_POLICIES and "TLS13" in https["sslPolicy"]
    assert https["certificateArn"] == prod_section("loadBalancer")["certificateArn"]
    (forward,) = https["defaultActions"]
    assert forward["type"] == "forward"
    assert https["routingHttpResponseStrictTransportSecurityHeaderValue"].startswith("max-age=")


def test_target_group_health_checks_health(run):
    tg = run.one("aws:lb/targetGroup:TargetGroup").plain
    assert tg["targetType"] == "ip" and tg["port"] == 5000 and tg["protocol"] == "HTTP"
    assert tg["healthCheck"]["path"] == "/health" and tg["healthCheck"]["matcher"] == "200"


def test_a_deploy_drains_tasks_as_long_as_an_upload_may_run(run):
    """Proxied uploads may take the ALB's idle timeout (3600 s); a deploy or scale-in must not cut
    them at 120 s. Fargate stops a container at most 120 s after SIGTERM, which ECS sends only
    once the target group has drained the task, so the drain is what has to be that long."""
    idle = prod_section("loadBalancer")["idleTimeoutSeconds"]
    tg = run.one("aws:lb/targetGroup:TargetGroup").plain
    assert tg["deregistrationDelay"] == min(idle, 3600) == 3600
    assert container(run)["stopTimeout"] == 120  # the Fargate maximum
    # `pulumi up` waits for steady state: long enough for that drain (the provider's default is 20 min).
    service = run.one("aws:ecs/service:Service")
    grace = int(service.plain["healthCheckGracePeriodSeconds"])
    assert service.custom_timeouts["update"] == f"{-(-(grace + 3600 + 900) // 60)}m"
    assert int(service.custom_timeouts["update"].rstrip("m")) * 60 > 3600 + grace
    assert int(service.custom_timeouts["delete"].rstrip("m")) * 60 > 3600


def test_the_deploy_workflow_outlives_the_longest_rollout(run):
    """The job timeout and the AWS session cover a first Multi-AZ deploy plus a full drain."""
    import yaml

    service = run.one("aws:ecs/service:Service")
    workflow = yaml.safe_load((REPO_ROOT / ".github/workflows/deploy.yml").read_text())
    job = workflow["jobs"]["up"]
    (credentials,) = [step for step in job["steps"] if "configure-aws-credentials" in step.get("uses", "")]
    rollout_minutes = int(service.custom_timeouts["update"].rstrip("m"))
    # RDS Multi-AZ create (~40 min at worst) and the image build come before the ECS rollout.
    assert job["timeout-minutes"] >= rollout_minutes + 60
    assert int(credentials["with"]["role-duration-seconds"]) >= job["timeout-minutes"] * 60


def test_route53_alias_points_the_domain_at_the_alb(run):
    (record,) = [r.plain for r in run.of_type("aws:route53/record:Record")]
    assert record["name"] == "mlflow.example.com" and record["type"] == "A"
    # A leftover record of the same name (an earlier stack, or made by hand) does not fail the `up`.
    assert record["allowOverwrite"] is True
    assert record["zoneId"] == prod_section("loadBalancer")["hostedZoneId"]
    assert record["aliases"][0]["name"].endswith(".elb.amazonaws.com")


def test_certificate_is_created_and_dns_validated_without_a_certificate_arn():
    lb = {k: v for k, v in prod_section("loadBalancer").items() if k != "certificateArn"}
    run = run_prod(loadBalancer=lb)
    cert = run.one("aws:acm/certificate:Certificate").plain
    assert cert["domainName"] == "mlflow.example.com" and cert["validationMethod"] == "DNS"
    validation = run.one("aws:route53/record:Record", "certificate-validation").plain
    assert validation["type"] == "CNAME" and validation["zoneId"] == lb["hostedZoneId"]
    certificate_arn = f"arn:aws:acm:{REGION}:{ACCOUNT}:{run.one('aws:acm/certificate:Certificate').name}"
    validated = run.one("aws:acm/certificateValidation:CertificateValidation").plain
    assert validated["certificateArn"] == certificate_arn
    assert run.named("mlflow-prod-https").plain["certificateArn"] == certificate_arn


def test_oidc_signs_in_at_the_alb_with_a_secret_client_secret(oidc_run):
    run = oidc_run
    https = run.named("mlflow-prod-https")
    # The client secret makes the listener's actions secret as a whole.
    assert secret_paths(https.inputs) == ["defaultActions"]
    sign_in, forward = reveal(https.inputs["defaultActions"])
    assert sign_in["type"] == "authenticate-oidc" and sign_in["order"] == 1
    assert sign_in["authenticateOidc"]["clientSecret"] == "not-in-plain-text"
    assert sign_in["authenticateOidc"]["onUnauthenticatedRequest"] == "authenticate"
    assert forward["type"] == "forward" and forward["order"] == 2
    assert "not-in-plain-text" not in json.dumps(strip_secrets(https.inputs))
    assert "username" not in run.outputs and "password" not in run.outputs
    secrets = {s["name"] for s in container(run)["secrets"]}
    assert secrets == {"MLFLOW_DB_PASSWORD"}
    assert "--app-name" not in container(run)["command"]


# --- outputs and secrets -------------------------------------------------------------------------


def strip_secrets(value):
    if is_secret(value):
        return "<secret>"
    if isinstance(value, dict):
        return {k: strip_secrets(v) for k, v in value.items()}
    if isinstance(value, list):
        return [strip_secrets(v) for v in value]
    return value


def test_outputs_are_the_https_url_and_secret_credentials(run):
    uri, uri_secret = run.outputs["trackingUri"]
    assert uri == "https://mlflow.example.com" and not uri_secret
    assert run.outputs["username"] == ("admin", False)
    password, password_secret = run.outputs["password"]
    assert password_secret and len(password) >= 12
    env, env_secret = run.outputs["clientEnv"]
    assert env_secret and "MLFLOW_TRACKING_URI='https://mlflow.example.com'" in env


def test_no_generated_secret_appears_in_plain_text_anywhere(run):
    db_password = reveal(run.one("aws:rds/instance:Instance").inputs["password"])
    auth = json.loads(reveal(run.one("aws:secretsmanager/secretVersion:SecretVersion", "auth").inputs["secretString"]))
    values = [db_password, *auth.values(), run.outputs["password"][0]]
    assert all(v and len(v) >= 32 for v in values)
    for resource in run.resources:
        text = json.dumps(strip_secrets(resource.inputs))
        assert not any(v in text for v in values), f"a secret leaks through {resource.typ} {resource.name}"
    plain_outputs = json.dumps({k: v for k, (v, secret) in run.outputs.items() if not secret})
    assert not any(v in plain_outputs for v in values)


def test_invalid_config_fails_before_any_resource_is_registered():
    db = {**prod_section("database"), "publiclyAccessible": True}
    with pytest.raises(ConfigError) as error:
        run_prod(database=db)
    assert ("database.publiclyAccessible" in dict(error.value.problems))


@pytest.mark.parametrize("secret_keys", [(), ("mlflow-platform:database",)])
def test_a_plain_text_oidc_client_secret_is_refused_before_anything_is_registered(secret_keys):
    run = run_prod(secret_keys=secret_keys, raise_errors=False, auth={"mode": "oidc", "oidc": OIDC})
    assert isinstance(run.error, ConfigError)
    assert list(dict(run.error.problems)) == ["auth.oidc.clientSecret"]
    assert "pulumi config set --secret --path mlflow-platform:auth.oidc.clientSecret" in str(run.error)
    assert OIDC["clientSecret"] not in str(run.error)
    assert [r.typ for r in run.resources if r.typ != "pulumi:pulumi:Stack"] == []


# --- destroying -----------------------------------------------------------------------------------


def test_destroy_keeps_the_access_logs_and_deletes_only_what_is_rebuilt(run):
    """`pulumi destroy` must not fail on the always non-empty log bucket, nor delete the audit trail."""
    archive = run.one("mlflow-platform:aws:LogArchive")
    kept = [r for r in run.custom if r.parent == archive.urn]
    assert {r.typ.split(":")[-1] for r in kept} == {
        "Bucket", "BucketPublicAccessBlock", "BucketOwnershipControls", "BucketServerSideEncryptionConfiguration",
        "BucketVersioning", "BucketLifecycleConfiguration", "BucketPolicy",
    }  # fmt: skip
    assert all(r.retain_on_delete for r in kept)
    assert run.one(BUCKET, "access-logs").plain.get("forceDestroy") in (None, False)
    # Nothing else is retained; the artifacts (data) stop a destroy unless artifactStore.forceDestroy.
    assert [r.name for r in run.custom if r.retain_on_delete and r.parent != archive.urn] == []
    # The ECR images go with the repository: every one is rebuilt from images/mlflow by `pulumi up`.
    assert run.one("aws:ecr/repository:Repository").plain["forceDelete"] is True


# --- dev and prod run the same MLflow ------------------------------------------------------------


def test_dev_and_prod_containers_run_the_same_mlflow_command(run):
    """Same entrypoint, server and options with the same values, except the ones that must differ."""
    prod_argv = container(run)["entryPoint"] + container(run)["command"]
    dev = run_program(stack_config("dev"), "dev")
    containers = [r.plain for r in dev.of_type("docker:index/container:Container")]
    dev_argvs = [(c.get("entrypoints") or []) + (c.get("command") or []) for c in containers]
    (dev_argv,) = [a for a in dev_argvs if a[3:5] == ["mlflow", "server"]]
    assert dev_argv[:5] == prod_argv[:5] == ["python", "-m", "mlflow_boot", "mlflow", "server"]

    def is_flag(arg: str) -> bool:
        return arg.startswith("--") and " " not in arg

    def options(argv: list[str]) -> dict[str, str | None]:
        """--flag -> its value (None for a switch); a value may itself start with '--' (uvicorn opts)."""
        found, rest = {}, argv[5:]
        for index, arg in enumerate(rest):
            if is_flag(arg) and not (index and rest[index - 1] == "--uvicorn-opts"):
                nxt = rest[index + 1] if index + 1 < len(rest) else None
                found[arg] = None if nxt is None or is_flag(nxt) else nxt
        return found

    dev_options, prod_options = options(dev_argv), options(prod_argv)
    # Allowed to differ: where the bucket is, which hosts clients use, the load balancer's
    # keep-alive, and prod's auth app. Everything else is the same flag with the same value.
    differ = {"--artifacts-destination", "--allowed-hosts", "--uvicorn-opts", "--app-name"}
    assert set(dev_options) | {"--app-name"} == set(prod_options)
    assert {k: v for k, v in dev_options.items() if k not in differ} == \
        {k: v for k, v in prod_options.items() if k not in differ}
    dev_uvicorn, prod_uvicorn = dev_options["--uvicorn-opts"].split(), prod_options["--uvicorn-opts"].split()
    assert dev_uvicorn[:-1] == prod_uvicorn[:-1]  # the same loop and HTTP parser; keep-alive differs


def test_prod_command_values_come_from_the_committed_config(run):
    """Literal values of Pulumi.prod.yaml, not the program's own spec function."""
    command = container(run)["command"]

    def value(flag: str) -> str:
        return command[command.index(flag) + 1]

    tracking, balancer = prod_section("tracking"), prod_section("loadBalancer")
    assert value("--allowed-hosts") == ",".join(tracking["allowedHosts"]) == "mlflow.example.com"
    assert value("--workers") == str(tracking["workers"])
    assert value("--app-name") == "basic-auth"
    assert value("--default-artifact-root") == "mlflow-artifacts:/"
    # uvicorn must keep idle connections longer than the ALB (3600 s), or reused ones get 502s.
    assert f"--timeout-keep-alive {balancer['idleTimeoutSeconds'] + 15}" in value("--uvicorn-opts")
    assert re.fullmatch(r"s3://mlflow-prod-artifacts-[0-9a-z-]+/", value("--artifacts-destination"))


# --- creation order ------------------------------------------------------------------------------


def test_creation_order_closes_every_window(run):
    service = run.one("aws:ecs/service:Service")
    # Tasks start only once they may read their secrets and bucket, behind a listener.
    for dependency in (run.one("aws:iam/rolePolicy:RolePolicy", "execution"), run.named("mlflow-prod-task-artifacts"),
                       run.named("mlflow-prod-https")):  # fmt: skip
        assert run.depends_on(service, dependency), dependency.name
    # A bucket policy is never applied before the public-access block.
    for bucket in ("mlflow-prod-artifacts", "mlflow-prod-access-logs"):
        bucket_policy = next(r for r in run.of_type("aws:s3/bucketPolicy:BucketPolicy") if r.name == bucket)
        block = next(r for r in run.of_type("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock") if r.name == bucket)
        assert run.depends_on(bucket_policy, block), bucket
    # Access logs and flow logs switch on after the log bucket lets them write.
    log_policy = run.one("aws:s3/bucketPolicy:BucketPolicy", "access-logs")
    assert run.depends_on(run.one("aws:lb/loadBalancer:LoadBalancer"), log_policy)
    assert run.depends_on(run.one("aws:ec2/flowLog:FlowLog"), log_policy)
    # RDS exports into log groups that already have a retention period.
    db = run.one("aws:rds/instance:Instance")
    for group in run.of_type("aws:cloudwatch/logGroup:LogGroup"):
        if log_group_name(group).startswith("/aws/rds/"):
            assert run.depends_on(db, group)
