"""MetadataStore: RDS PostgreSQL, private, encrypted, TLS only, its password in Secrets Manager."""

from __future__ import annotations

import json
import re

from components.specs.mlflow_server import DB_CONNECTIONS_HEADROOM, DB_CONNECTIONS_PER_WORKER
from tests.mocks.prod_helpers import (
    ACCOUNT,
    REGION,
    is_secret,
    log_group_name,
    prod_section,
    prod_settings,
    reveal,
    sg_id,
)


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


def test_rds_allows_every_worker_of_every_task_its_full_pool(prod_run):
    settings = prod_settings()
    params = {p["name"]: p for p in prod_run.one("aws:rds/parameterGroup:ParameterGroup").plain["parameters"]}
    expected = settings.tracking.workers * settings.tasks.max_count * DB_CONNECTIONS_PER_WORKER + DB_CONNECTIONS_HEADROOM
    assert params["max_connections"]["value"] == str(expected)
    assert params["max_connections"]["applyMethod"] == "pending-reboot"


def test_rds_log_groups_exist_with_retention_before_rds_creates_them(prod_run):
    groups = {log_group_name(r): r.plain for r in prod_run.of_type("aws:cloudwatch/logGroup:LogGroup")}
    for log in ("postgresql", "upgrade"):
        group = groups[f"/aws/rds/instance/{prod_run.one('aws:rds/instance:Instance').plain['identifier']}/{log}"]
        assert group["retentionInDays"] == 90 and group["kmsKeyId"]


def test_database_password_is_generated_secret_and_stored_in_secrets_manager(prod_run):
    db = prod_run.one("aws:rds/instance:Instance")
    assert is_secret(db.inputs["password"])
    version = prod_run.one("aws:secretsmanager/secretVersion:SecretVersion", "db-credentials")
    assert is_secret(version.inputs["secretString"])
    stored = json.loads(reveal(version.inputs["secretString"]))
    assert stored == {"username": "mlflow", "password": reveal(db.inputs["password"])}
    secret = prod_run.one("aws:secretsmanager/secret:Secret", "db-credentials").plain
    assert secret["kmsKeyId"].startswith(f"arn:aws:kms:{REGION}:{ACCOUNT}:key/")
