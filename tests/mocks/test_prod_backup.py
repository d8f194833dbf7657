"""BackupPlan: AWS Backup of the RDS instance and the artifact bucket (components/aws/backup.py)."""

from __future__ import annotations

import json
import re

import pytest

from components.aws.backup import COMPLETION_WINDOW_MINUTES, START_WINDOW_MINUTES
from tests.mocks.prod_helpers import ACCOUNT, BUCKET, REGION, aws_outputs, policy, prod_settings, run_prod

VAULT = "aws:backup/vault:Vault"
PLAN = "aws:backup/plan:Plan"
SELECTION = "aws:backup/selection:Selection"
KEY = "aws:kms/key:Key"
ALIAS = "aws:kms/alias:Alias"
ROLE = "aws:iam/role:Role"
ATTACHMENT = "aws:iam/rolePolicyAttachment:RolePolicyAttachment"
# CreateBackupVault's name pattern (AWS Backup API reference).
VAULT_NAME = r"^[a-zA-Z0-9\-_]{2,50}$"


def arn_of(run, resource) -> str:
    return aws_outputs(resource.typ, resource.name, resource.plain)["arn"]


def test_the_vault_is_encrypted_with_a_key_of_its_own(prod_run):
    """FSBP Backup.1 / CKV_AWS_166: recovery points under a customer-managed key; the key's policy
    is the account's administration only (AWS Backup uses it through grants the role's managed
    policy allows), rotated, and the vault is never force-destroyed with its recovery points."""
    vault = prod_run.one(VAULT)
    key = prod_run.one(KEY, "-backup-key")
    assert vault.plain["kmsKeyArn"] == arn_of(prod_run, key)
    assert vault.plain["forceDestroy"] is False
    assert key.plain["enableKeyRotation"] is True
    assert [s["Sid"] for s in policy(key)["Statement"]] == ["AccountAdministers"]
    aliases = {a.plain["name"] for a in prod_run.of_type(ALIAS)}
    assert "alias/mlflow-prod-backup" in aliases
    # The name AWS gets is Pulumi's auto-name, within CreateBackupVault's pattern.
    assert re.fullmatch(VAULT_NAME, f"{vault.name}-a1b2c3d")


def test_the_plan_backs_up_daily_into_the_vault_with_the_configured_retention(prod_run):
    (rule,) = prod_run.one(PLAN).plain["rules"]
    settings = prod_settings().backup
    assert rule["targetVaultName"] == prod_run.one(VAULT).name
    assert rule["schedule"] == settings.schedule == "cron(0 6 * * ? *)"
    assert rule["lifecycle"] == {"deleteAfter": 35}
    assert (rule["startWindow"], rule["completionWindow"]) == (START_WINDOW_MINUTES, COMPLETION_WINDOW_MINUTES)
    assert rule.get("copyActions", []) == []
    run = run_prod(backup={"retentionDays": 90, "schedule": "cron(30 1 * * ? *)"})
    (rule,) = run.one(PLAN).plain["rules"]
    assert rule["lifecycle"] == {"deleteAfter": 90}
    assert rule["schedule"] == "cron(30 1 * * ? *)"


def test_the_default_schedule_starts_after_the_rds_backup_window_and_outside_maintenance():
    """An AWS Backup job of an RDS instance waits while the instance is in its own backup or
    maintenance window: the plan's start (and its one-hour start window) falls in neither."""
    settings = prod_settings()
    hour = int(settings.backup.schedule.split()[1])
    start = hour * 60
    backup_end = int(settings.database.backup_window.split("-")[1][:2]) * 60
    maintenance = settings.database.maintenance_window  # sun:04:30-sun:05:30
    m_start, m_end = (int(t.split(":")[1]) * 60 + int(t.split(":")[2]) for t in maintenance.split("-"))
    assert start >= backup_end
    # [start, start + start window) and the maintenance window do not meet.
    assert start >= m_end or start + START_WINDOW_MINUTES <= m_start


def test_the_selection_names_the_database_and_the_bucket(prod_run):
    """FSBP RDS.26 (an RDS instance protected by a backup plan); AWS Backup for S3 requires a
    versioned bucket, which the artifact bucket is."""
    selection = prod_run.one(SELECTION).plain
    db = prod_run.one("aws:rds/instance:Instance")
    bucket = prod_run.one(BUCKET, "-artifacts")
    assert selection["resources"] == [arn_of(prod_run, db), aws_outputs(bucket.typ, bucket.name, bucket.plain)["arn"]]
    assert selection["planId"] == f"{prod_run.one(PLAN).name}-id"
    versioning = [v for v in prod_run.of_type("aws:s3/bucketVersioning:BucketVersioning") if bucket.name in v.name]
    assert versioning and versioning[0].plain["versioningConfiguration"]["status"] == "Enabled"


def test_the_backup_role_is_trusted_by_aws_backup_of_this_account_with_the_managed_policies(prod_run):
    role = prod_run.one(ROLE, "-backup")
    assert prod_run.one(SELECTION).plain["iamRoleArn"] == f"arn:aws:iam::{ACCOUNT}:role/{role.name}"
    (trust,) = json.loads(role.plain["assumeRolePolicy"])["Statement"]
    assert trust["Principal"] == {"Service": "backup.amazonaws.com"}
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": ACCOUNT}}
    attached = {a.plain["policyArn"] for a in prod_run.of_type(ATTACHMENT) if a.plain["role"] == role.name}
    assert attached == {
        "arn:aws:iam::aws:policy/service-role/AWSBackupServiceRolePolicyForBackup",
        "arn:aws:iam::aws:policy/service-role/AWSBackupServiceRolePolicyForRestores",
        "arn:aws:iam::aws:policy/AWSBackupServiceRolePolicyForS3Backup",
        "arn:aws:iam::aws:policy/AWSBackupServiceRolePolicyForS3Restore",
    }


def guarded_principals(run) -> list[str]:
    bucket_policy = [p for p in run.of_type("aws:s3/bucketPolicy:BucketPolicy") if "-artifacts" in p.name]
    (deny,) = [s for s in policy(bucket_policy[0])["Statement"] if s["Sid"] == "OnlyTheServerAndOperatorsTouchObjects"]
    return deny["Condition"]["ArnNotEquals"]["aws:PrincipalArn"]


def test_the_bucket_policy_lets_the_backup_role_read_and_restore_objects(prod_run):
    """The bucket denies object access to every principal but the server and its operators: AWS
    Backup's role must be one of them, or every S3 backup job fails with AccessDenied."""
    role = prod_run.one(ROLE, "-backup")
    assert f"arn:aws:iam::{ACCOUNT}:role/{role.name}" in guarded_principals(prod_run)


def test_backups_off_creates_nothing_and_leaves_the_bucket_to_the_server_and_operators():
    run = run_prod(backup={"enabled": False})
    for typ in (VAULT, PLAN, SELECTION):
        assert run.of_type(typ) == []
    assert not [r for r in run.of_type(ROLE) if "-backup" in r.name]
    assert not [p for p in guarded_principals(run) if "backup" in p]


def test_a_copy_region_gets_its_own_vault_and_key_there():
    run = run_prod(backup={"copyRegion": "eu-central-1", "copyRetentionDays": 365})
    copy_vault = run.one(VAULT, "-copy")
    copy_key = run.one(KEY, "-copy-key")
    assert copy_vault.plain["region"] == copy_key.plain["region"] == "eu-central-1"
    assert copy_vault.plain["kmsKeyArn"] == f"arn:aws:kms:eu-central-1:{ACCOUNT}:key/{copy_key.name}"
    assert {a.plain["name"]: a.plain.get("region") for a in run.of_type(ALIAS)}["alias/mlflow-prod-backup-copy"] == (
        "eu-central-1"
    )
    # The stack's one AWS provider: pulumi-aws 7 takes the region per resource.
    assert copy_vault.provider == [v for v in run.of_type(VAULT) if v is not copy_vault][0].provider
    (rule,) = run.one(PLAN).plain["rules"]
    assert rule["copyActions"] == [
        {"destinationVaultArn": f"arn:aws:backup:eu-central-1:{ACCOUNT}:backup-vault:{copy_vault.name}",
         "lifecycle": {"deleteAfter": 365}}
    ]  # fmt: skip
    # The primary vault stays in the stack's region.
    primary = [v for v in run.of_type(VAULT) if v is not copy_vault]
    assert [v.plain.get("region") for v in primary] == [None]
    assert REGION != "eu-central-1"


def test_copies_keep_the_primary_retention_unless_told():
    run = run_prod(backup={"copyRegion": "eu-central-1", "retentionDays": 60})
    (rule,) = run.one(PLAN).plain["rules"]
    assert rule["copyActions"][0]["lifecycle"] == {"deleteAfter": 60}


@pytest.mark.parametrize(
    ("backup", "message"),
    [
        ({"copyRegion": "eu-west-1"}, "backup.copyRegion: must be another region than aws.region eu-west-1"),
        ({"copyRetentionDays": 30}, "backup.copyRetentionDays: is ignored unless backup.copyRegion is set"),
        ({"retentionDays": 0}, "backup.retentionDays"),
        ({"schedule": "daily"}, "backup.schedule"),
    ],
)
def test_bad_backup_config_is_refused_with_the_key_named(backup, message):
    run = run_prod(raise_errors=False, backup=backup)
    assert run.error is not None
    assert message in str(run.error)
