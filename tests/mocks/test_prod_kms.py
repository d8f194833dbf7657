"""KMS keys (lib/kms.py): one per purpose, each with an explicit policy, and who uses which.

Facts from the AWS guides, asserted on what the program asks for:
- CloudWatch Logs uses a key under its regional service principal, with the log group's ARN as
  encryption context `aws:logs:arn` (CloudWatch Logs user guide, "Encrypt log data using AWS KMS").
  Data it encrypted stays under the old key after a change: Logs needs that key to read it
  (DisassociateKmsKey API reference).
- Fargate encrypts ephemeral storage as `fargate.amazonaws.com`: GenerateDataKeyWithoutPlaintext and
  CreateGrant (Decrypt only), with context `aws:ecs:clusterAccount` / `aws:ecs:clusterName`; it takes
  a key ARN, never an alias (ECS developer guide, "fargate-create-storage-key").
- ECR wants the full key ARN and fixes a repository's encryption at creation (ECR API reference,
  EncryptionConfiguration; terraform-provider-aws: encryption_configuration is ForceNew).
- An RDS instance's `kms_key_id` is ForceNew, and Performance Insights' key can never change
  (pulumi_aws rds.Instance docs): the database stays on the key it was created with.
- A secret's `kms_key_id` is updated in place (UpdateSecret); Secrets Manager re-encrypts the
  labelled versions under the new key and keeps the old copies (Secrets Manager user guide,
  "Change the encryption key for a secret").
"""

from __future__ import annotations

from fnmatch import fnmatch

import pytest

from tests.mocks.prod_helpers import ACCOUNT, REGION, log_group_name, policy, prod_section, run_prod, statements

KEY = "aws:kms/key:Key"
ROOT = f"arn:aws:iam::{ACCOUNT}:root"


def key_arn(name: str) -> str:
    return f"arn:aws:kms:{REGION}:{ACCOUNT}:key/{name}"


def key_named(run, purpose: str):
    """The key behind `alias/mlflow-prod-<purpose>`."""
    (alias,) = [a for a in run.of_type("aws:kms/alias:Alias") if a.plain["name"] == f"alias/mlflow-prod-{purpose}"]
    (found,) = [k for k in run.of_type(KEY) if f"{k.name}-key-id" == alias.plain["targetKeyId"]]
    return found


PURPOSES = ("database", "logs", "secrets", "artifacts", "images", "task-storage", "backup", "alarms", "job-queue")


def test_one_key_per_purpose_each_with_an_explicit_policy_that_the_account_administers(prod_run):
    keys = prod_run.of_type(KEY)
    assert len(keys) == len(PURPOSES) == len({key_named(prod_run, p).name for p in PURPOSES})
    for key in keys:
        assert key.plain["enableKeyRotation"] is True and key.plain["deletionWindowInDays"] == 30
        doc = policy(key)
        admin = statements(doc, "AccountAdministers")
        assert admin["Principal"] == {"AWS": ROOT} and admin["Action"] == "kms:*"
        # Every other statement is for a service principal, pinned by an encryption context or,
        # where the service passes none (CloudWatch alarms), by the source account and ARN.
        for statement in doc["Statement"]:
            if statement is not admin:
                assert set(statement["Principal"]) == {"Service"}, statement
                keys = {k for block in statement["Condition"].values() for k in block}
                assert (
                    any("kms:EncryptionContext:" in k for k in keys) or {"aws:SourceAccount", "aws:SourceArn"} <= keys
                )


def test_the_database_stays_on_the_key_it_was_created_with(prod_run):
    """Same resource (URN), same ARN: the instance and Performance Insights are not replaced."""
    database = key_named(prod_run, "database")
    assert database.name == "mlflow-prod-platform"
    instance = prod_run.one("aws:rds/instance:Instance").plain
    assert instance["kmsKeyId"] == instance["performanceInsightsKmsKeyId"] == key_arn(database.name)


def test_secrets_use_the_secrets_key_and_their_readers_decrypt_only_through_secrets_manager(prod_run):
    secrets_key = key_arn(key_named(prod_run, "secrets").name)
    secrets = prod_run.of_type("aws:secretsmanager/secret:Secret")
    # The database role's, MLflow's encryption keys, the job queue's URL.
    assert len(secrets) == 4 and {s.plain["kmsKeyId"] for s in secrets} == {secrets_key}
    for role_policy, sid in (("execution", "DecryptTheTaskSecrets"), ("db-proxy", "DecryptThemThroughSecretsManager")):
        decrypt = statements(policy(prod_run.one("aws:iam/rolePolicy:RolePolicy", role_policy)), sid)
        assert decrypt["Action"] == ["kms:Decrypt"] and decrypt["Resource"] == [secrets_key]
        assert decrypt["Condition"] == {"StringEquals": {"kms:ViaService": f"secretsmanager.{REGION}.amazonaws.com"}}
    # No role is granted the database, logs, images or storage keys: services use those.
    granted = {
        r
        for rp in prod_run.of_type("aws:iam/rolePolicy:RolePolicy")
        for s in policy(rp)["Statement"]
        if any(a.startswith("kms:") for a in s["Action"])
        for r in s["Resource"]
    }
    assert granted == {secrets_key, key_arn(key_named(prod_run, "artifacts").name)}


def test_log_groups_use_the_logs_key_which_only_logs_of_this_stack_may_use(prod_run):
    logs_key = key_named(prod_run, "logs")
    groups = prod_run.of_type("aws:cloudwatch/logGroup:LogGroup")
    # The container's, RDS's two, WAF's.
    assert len(groups) == 5 and {g.plain["kmsKeyId"] for g in groups} == {key_arn(logs_key.name)}
    patterns = [
        f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/mlflow/prod/tracking-server-*",
        f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:/aws/rds/instance/mlflow-prod-*",
        f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:aws-waf-logs-mlflow-prod-*",
    ]
    logs = statements(policy(logs_key), "CloudWatchLogsOfThisStack")
    assert logs["Principal"] == {"Service": f"logs.{REGION}.amazonaws.com"}
    assert logs["Condition"] == {"ArnLike": {"kms:EncryptionContext:aws:logs:arn": patterns}}
    # Every log group this stack creates matches one of the patterns (names as AWS gives them).
    for group in groups:
        arn = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{log_group_name(group)}"
        assert any(fnmatch(arn, p) for p in patterns), arn
    # The database key keeps the same statement: log events encrypted under it before the logs
    # key existed stay readable for their retention period.
    legacy = statements(policy(key_named(prod_run, "database")), "CloudWatchLogsReadsWhatItEncryptedBefore")
    assert legacy["Condition"] == logs["Condition"] and legacy["Principal"] == logs["Principal"]


def test_fargate_ephemeral_storage_uses_its_own_key_pinned_to_this_cluster(prod_run):
    storage = key_named(prod_run, "task-storage")
    cluster = prod_run.one("aws:ecs/cluster:Cluster")
    assert cluster.plain["configuration"] == {
        "managedStorageConfiguration": {"fargateEphemeralStorageKmsKeyId": key_arn(storage.name)}
    }
    assert cluster.plain["settings"] == [{"name": "containerInsights", "value": "enabled"}]
    # The cluster is auto-named `<resource name>-<random>`: the pattern covers exactly that.
    assert "name" not in cluster.plain
    pinned = {
        "StringEquals": {"kms:EncryptionContext:aws:ecs:clusterAccount": ACCOUNT},
        "StringLike": {"kms:EncryptionContext:aws:ecs:clusterName": f"{cluster.name}-*"},
    }
    doc = policy(storage)
    data_keys = statements(doc, "FargateDataKeysForThisCluster")
    grant = statements(doc, "FargateDecryptGrantForThisCluster")
    assert data_keys["Principal"] == grant["Principal"] == {"Service": "fargate.amazonaws.com"}
    assert data_keys["Action"] == "kms:GenerateDataKeyWithoutPlaintext" and data_keys["Condition"] == pinned
    assert grant["Action"] == "kms:CreateGrant"
    assert grant["Condition"] == {**pinned, "ForAllValues:StringEquals": {"kms:GrantOperations": ["Decrypt"]}}
    assert len(doc["Statement"]) == 3


def test_the_repository_is_encrypted_with_the_images_key_by_full_arn(prod_run):
    images = key_named(prod_run, "images")
    repository = prod_run.one("aws:ecr/repository:Repository").plain
    assert repository["encryptionConfigurations"] == [{"encryptionType": "KMS", "kmsKey": key_arn(images.name)}]


@pytest.mark.parametrize("purpose", ["artifacts", "secrets", "images", "job-queue"])
def test_keys_used_with_the_callers_rights_have_only_the_accounts_statement(prod_run, purpose):
    """S3, Secrets Manager and ECR call KMS as the caller (ECR and ElastiCache through grants
    they make with the deployer's rights): IAM grants decide, the key needs no service statement."""
    assert [s["Sid"] for s in policy(key_named(prod_run, purpose))["Statement"]] == ["AccountAdministers"]


def test_a_configured_artifact_key_replaces_only_the_artifacts_key(prod_run):
    """`artifactStore.kmsKeyArn`: the bucket and the task role's grant use that key; the program
    creates no artifacts key (that key's policy is its owner's), and every other key stays."""
    yours = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/0a1b2c3d-0000-1111-2222-333344445555"
    run = run_prod(artifactStore={**prod_section("artifactStore"), "kmsKeyArn": yours})
    aliases = sorted(a.plain["name"] for a in run.of_type("aws:kms/alias:Alias"))
    assert aliases == sorted(f"alias/mlflow-prod-{p}" for p in PURPOSES if p != "artifacts")
    sse = run.one("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration", "artifacts")
    assert sse.plain["rules"][0]["applyServerSideEncryptionByDefault"]["kmsMasterKeyId"] == yours
    grant = statements(policy(run.one("aws:iam/rolePolicy:RolePolicy", "task-artifacts")), "UseTheBucketKeyThroughS3")
    assert grant["Resource"] == [yours]
