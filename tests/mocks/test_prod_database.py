"""MetadataStore: RDS PostgreSQL, private, encrypted, TLS only; the master password RDS's own,
the servers' role's in Secrets Manager."""

from __future__ import annotations

import json
import re

from components.config import ConfigError
from components.specs.connections import ConnectionBudget
from images.mlflow import server_contract as contract
from tests.mocks.aws_fixtures import MASTER_SECRET_ARN
from tests.mocks.prod_helpers import (
    ACCOUNT,
    EGRESS,
    INGRESS,
    REGION,
    aws_outputs,
    container_env,
    container_secrets,
    generated_value,
    is_secret,
    log_group_name,
    policy,
    prod_section,
    prod_settings,
    reveal,
    rules_of,
    run_prod,
    sg_id,
    statements,
)


def server_secret_arn(run) -> str:
    return f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{run.one('aws:secretsmanager/secret:Secret', 'db-server-credentials').name}-AbCdEf"


def test_rds_is_private_encrypted_multi_az_backed_up_and_protected(prod_run):
    db = prod_run.one("aws:rds/instance:Instance")
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
    assert plain["vpcSecurityGroupIds"] == [sg_id(prod_run, "db")]
    assert plain["caCertIdentifier"].startswith("rds-ca-")


def test_rds_parameter_group_forces_tls(prod_run):
    group = prod_run.one("aws:rds/parameterGroup:ParameterGroup").plain
    assert group["family"] == "postgres17"
    params = {p["name"]: p["value"] for p in group["parameters"]}
    assert params["rds.force_ssl"] == "1" and params["ssl_min_protocol_version"] == "TLSv1.2"
    assert prod_run.one("aws:rds/instance:Instance").plain["parameterGroupName"] == "mlflow-prod-db"


def test_the_servers_reach_the_database_through_rds_proxy_over_verified_tls(prod_run):
    """4,090 connections at worst (three pools of 42 per worker, 2 workers, 16 tasks in a rollout
    at the maximum) against a 4 GiB instance: RDS Proxy multiplexes them onto the instance's own."""
    proxy = prod_run.one("aws:rds/proxy:Proxy")
    plain = proxy.plain
    assert plain["engineFamily"] == "POSTGRESQL" and plain["requireTls"] is True
    # Both roles sign in through it: the servers' own, and the master user (the boot step's).
    assert [auth["secretArn"] for auth in plain["auths"]] == [server_secret_arn(prod_run), MASTER_SECRET_ARN]
    for auth in plain["auths"]:
        assert auth["authScheme"] == "SECRETS" and auth["clientPasswordAuthType"] == "POSTGRES_SCRAM_SHA_256"
        assert auth["iamAuth"] == "DISABLED"
    assert plain["vpcSecurityGroupIds"] == [sg_id(prod_run, "proxy")]
    private = [s.name for s in prod_run.of_type("aws:ec2/subnet:Subnet") if s.plain["tags"]["tier"] == "private"]
    assert plain["vpcSubnetIds"] == [f"{name}-id" for name in private]
    pool = prod_run.one("aws:rds/proxyDefaultTargetGroup:ProxyDefaultTargetGroup").plain["connectionPoolConfig"]
    assert pool["maxConnectionsPercent"] == 90 and pool["maxIdleConnectionsPercent"] <= 90
    target = prod_run.one("aws:rds/proxyTarget:ProxyTarget")
    assert target.plain["targetGroupName"] == "default"
    instance = prod_run.one("aws:rds/instance:Instance")
    assert target.plain["dbInstanceIdentifier"] == instance.plain["identifier"]
    assert instance.urn in target.property_dependencies["dbInstanceIdentifier"]
    # The servers: the proxy's endpoint, verified against the Amazon roots (ACM), not the RDS CAs.
    env = container_env(prod_run)
    assert env["MLFLOW_DB_HOST"] == f"{proxy.name}.proxy-abcdefghijkl.{REGION}.rds.amazonaws.com"
    assert env["MLFLOW_DB_SSLMODE"] == "verify-full"
    assert env["MLFLOW_DB_SSLROOTCERT"] == "/etc/ssl/certs/ca-certificates.crt"
    # The task definition waits for the target: no task connects to a proxy without a database.
    task = prod_run.exactly("aws:ecs/taskDefinition:TaskDefinition", "mlflow-prod")
    assert target.urn in task.property_dependencies["containerDefinitions"]
    # RDS's default max_connections for the instance's memory holds: no override.
    params = {p["name"] for p in prod_run.one("aws:rds/parameterGroup:ParameterGroup").plain["parameters"]}
    assert "max_connections" not in params


def test_the_proxy_role_reads_only_the_database_credentials(prod_run):
    role = prod_run.one("aws:iam/role:Role", "db-proxy")
    trust = json.loads(reveal(role.inputs["assumeRolePolicy"]))
    assert [s["Principal"] for s in trust["Statement"]] == [{"Service": "rds.amazonaws.com"}]
    doc = policy(prod_run.one("aws:iam/rolePolicy:RolePolicy", "db-proxy"))
    assert statements(doc, "ReadTheCredentials")["Resource"] == [server_secret_arn(prod_run), MASTER_SECRET_ARN]
    decrypt = statements(doc, "DecryptThemThroughSecretsManager")
    assert decrypt["Condition"] == {"StringEquals": {"kms:ViaService": f"secretsmanager.{REGION}.amazonaws.com"}}
    assert prod_run.depends_on(
        prod_run.one("aws:rds/proxy:Proxy"), prod_run.one("aws:iam/rolePolicy:RolePolicy", "db-proxy")
    )


def test_only_the_proxy_reaches_the_database_and_only_the_tasks_reach_the_proxy(prod_run):
    tasks, proxy, db = sg_id(prod_run, "tasks"), sg_id(prod_run, "proxy"), sg_id(prod_run, "db")
    assert [r.get("referencedSecurityGroupId") for r in rules_of(prod_run, INGRESS, db)] == [proxy]
    assert [(r["fromPort"], r.get("referencedSecurityGroupId")) for r in rules_of(prod_run, INGRESS, proxy)] == [
        (5432, tasks)
    ]
    to_db = [r for r in rules_of(prod_run, EGRESS, tasks) if r["fromPort"] == 5432]
    assert [r["referencedSecurityGroupId"] for r in to_db] == [proxy]
    assert sorted(
        (r["fromPort"], r.get("referencedSecurityGroupId")) for r in rules_of(prod_run, EGRESS, proxy)
    ) == sorted([(5432, db), (443, sg_id(prod_run, "endpoints"))])


def test_without_the_proxy_a_default_instance_is_refused_naming_the_worst_case():
    run = run_prod(raise_errors=False, database={**prod_section("database"), "proxy": False})
    assert isinstance(run.error, ConfigError) and run.resources == []
    message = str(run.error)
    assert "mlflow-platform:database.proxy" in message and "4090 connections" in message
    assert "db.t4g.medium (4 GiB) should run at most 450" in message


def test_without_the_proxy_the_instance_takes_the_servers_worst_case():
    run = run_prod(database={**prod_section("database"), "proxy": False, "instanceClass": "db.r7g.2xlarge"})
    assert run.of_type("aws:rds/proxy:Proxy") == []
    settings = prod_settings()
    budget = ConnectionBudget(workers=settings.tracking.workers, servers=settings.tasks.max_count, engines=3, surge=2)
    params = {p["name"]: p for p in run.one("aws:rds/parameterGroup:ParameterGroup").plain["parameters"]}
    assert params["max_connections"]["value"] == str(budget.total) == "4090"
    assert params["max_connections"]["applyMethod"] == "pending-reboot"
    env = container_env(run)
    assert env["MLFLOW_DB_SSLROOTCERT"] == "/etc/ssl/certs/rds-global-bundle.pem"
    assert [r.get("referencedSecurityGroupId") for r in rules_of(run, INGRESS, sg_id(run, "db"))] == [
        sg_id(run, "tasks")
    ]


def test_rds_log_groups_exist_with_retention_before_rds_creates_them(prod_run):
    groups = {log_group_name(r): r.plain for r in prod_run.of_type("aws:cloudwatch/logGroup:LogGroup")}
    for log in ("postgresql", "upgrade"):
        group = groups[f"/aws/rds/instance/{prod_run.one('aws:rds/instance:Instance').plain['identifier']}/{log}"]
        assert group["retentionInDays"] == prod_section("logs")["retentionDays"] and group["kmsKeyId"]


def test_rds_manages_and_rotates_the_master_password_under_our_key(prod_run):
    """No master password in the program, the state or a plan (Checkov CKV_AWS_354-style
    "RDS-managed secret"): RDS draws it, keeps it under the platform key, and rotates it."""
    db = prod_run.one("aws:rds/instance:Instance")
    assert "password" not in db.inputs and "passwordWo" not in db.inputs
    assert db.plain["manageMasterUserPassword"] is True
    # With the other secrets, under the secrets key (the storage has the database key).
    secrets_key = prod_run.one("aws:kms/key:Key", "-secrets")
    assert db.plain["masterUserSecretKmsKeyId"] == f"arn:aws:kms:{REGION}:{ACCOUNT}:key/{secrets_key.name}"
    assert db.plain["username"] == "mlflow"


def test_the_servers_sign_in_as_their_own_role_and_only_boot_reads_the_master_secret(prod_run):
    env = container_env(prod_run)
    assert env[contract.DB_USER] == contract.SERVER_DB_ROLE == "mlflow_server"
    assert env[contract.DB_OWNER_USER] == "mlflow"
    version = prod_run.one("aws:secretsmanager/secretVersion:SecretVersion", "db-server-credentials")
    assert is_secret(version.inputs["secretString"])
    stored = json.loads(reveal(version.inputs["secretString"]))
    password = prod_run.one("random:index/randomPassword:RandomPassword", "db-server-password")
    assert stored == {"username": contract.SERVER_DB_ROLE, "password": generated_value(password)}
    assert len(stored["password"]) == contract.RDS_PASSWORD_LENGTH
    secret = prod_run.one("aws:secretsmanager/secret:Secret", "db-server-credentials").plain
    assert secret["kmsKeyId"].startswith(f"arn:aws:kms:{REGION}:{ACCOUNT}:key/")
    secrets = container_secrets(prod_run)
    version_id = aws_outputs(version.typ, version.name, {})["versionId"]
    # Ours pinned to the version this program wrote; RDS's at AWSCURRENT (it rotates it weekly,
    # and the boot step reads it once per task start).
    assert secrets[contract.DB_PASSWORD] == f"{server_secret_arn(prod_run)}:password::{version_id}"
    assert secrets[contract.DB_OWNER_PASSWORD] == f"{MASTER_SECRET_ARN}:password::"


def test_enhanced_monitoring_every_minute_with_a_role_only_rds_monitoring_of_this_account_assumes(prod_run):
    db = prod_run.one("aws:rds/instance:Instance")
    assert db.plain["monitoringInterval"] == 60
    role = prod_run.one("aws:iam/role:Role", "db-monitoring")
    assert db.plain["monitoringRoleArn"] == aws_outputs(role.typ, role.name, role.plain)["arn"]
    (trust,) = json.loads(reveal(role.inputs["assumeRolePolicy"]))["Statement"]
    assert trust["Principal"] == {"Service": "monitoring.rds.amazonaws.com"}
    assert trust["Condition"] == {
        "StringEquals": {"aws:SourceAccount": ACCOUNT},
        "ArnLike": {"aws:SourceArn": f"arn:aws:rds:{REGION}:{ACCOUNT}:db:*"},
    }
    attachment = prod_run.one("aws:iam/rolePolicyAttachment:RolePolicyAttachment", "db-monitoring")
    assert attachment.plain["policyArn"] == "arn:aws:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole"
    # RDS refuses a monitoring role that cannot write yet: the instance waits for the attachment.
    assert prod_run.depends_on(db, attachment)


def test_iam_database_authentication_is_on_and_ddl_is_logged(prod_run):
    db = prod_run.one("aws:rds/instance:Instance")
    assert db.plain["iamDatabaseAuthenticationEnabled"] is True
    params = {p["name"]: p for p in prod_run.one("aws:rds/parameterGroup:ParameterGroup").plain["parameters"]}
    assert params["log_statement"]["value"] == "ddl"
    assert params["log_min_duration_statement"]["value"] == "1000"
    # A dynamic parameter: applied without a reboot (RDS's default apply method "immediate").
    assert params["log_statement"].get("applyMethod", "immediate") == "immediate"
