"""JobQueue (prod): ElastiCache for Valkey, every input of the group and what the provider and AWS
do with it (components/aws/job_queue.py), the URL secret the tasks get, and the one scheduler task."""

from __future__ import annotations

import json
import re

import pytest

from components.aws.job_queue import AUTH_TOKEN_LENGTH, replication_group_id
from components.specs.redis import PORT
from components.versions import VALKEY_VERSION
from images.mlflow import server_contract as contract
from tests.mocks.prod_helpers import (
    SG,
    prod_section,
    prod_settings,
    run_prod,
    sg_id,
    subnet_ids,
    task_containers,
)
from tests.pulumi_mocks import is_secret, reveal, secret_paths

GROUP = "aws:elasticache/replicationGroup:ReplicationGroup"
SUBNETS = "aws:elasticache/subnetGroup:SubnetGroup"
SERVICE = "aws:ecs/service:Service"
TASK = "aws:ecs/taskDefinition:TaskDefinition"


def group(run):
    return run.one(GROUP)


def env_of(run, family: str) -> dict[str, str]:
    (task,) = [t for t in run.of_type(TASK) if t.plain["family"] == family]
    (server,) = [d for d in json.loads(reveal(task.inputs["containerDefinitions"])) if d["name"] == "mlflow"]
    return {e["name"]: e["value"] for e in server["environment"]}


def test_the_group_is_valkey_in_the_private_subnets_behind_its_own_group(prod_run):
    g = group(prod_run).plain
    assert (g["engine"], g["engineVersion"]) == ("valkey", VALKEY_VERSION)
    # Read back as <major>.<minor> (setEngineVersionValkey), and refused with a patch on create.
    assert re.fullmatch(r"[7-9]\.\d+", g["engineVersion"])
    assert g["port"] == PORT == 6379
    subnets = prod_run.one(SUBNETS).plain
    assert g["subnetGroupName"] == subnets["name"] == g["replicationGroupId"]
    assert subnets["subnetIds"] == subnet_ids(prod_run, "private")
    assert g["securityGroupIds"] == [sg_id(prod_run, "cache")]
    assert prod_run.one(SG, "cache").plain["vpcId"]
    assert prod_run.depends_on(group(prod_run), prod_run.one(SUBNETS))


def test_tls_only_and_encrypted_at_rest_under_the_job_queue_key(prod_run):
    g = group(prod_run).plain
    assert g["transitEncryptionEnabled"] is True and g["transitEncryptionMode"] == "required"
    assert g["atRestEncryptionEnabled"] is True
    (alias,) = [a for a in prod_run.of_type("aws:kms/alias:Alias") if a.plain["name"] == "alias/mlflow-prod-job-queue"]
    assert g["kmsKeyId"].endswith(f"key/{alias.plain['targetKeyId'].removesuffix('-key-id')}")


def test_the_auth_token_is_a_secret_aws_accepts(prod_run):
    resource = group(prod_run)
    assert secret_paths(resource.inputs) == ["authToken"]
    token = reveal(resource.inputs["authToken"])
    # ElastiCache's rules: 16-128 characters, no @, " or / (validReplicationGroupAuthToken).
    assert 16 <= len(token) == AUTH_TOKEN_LENGTH <= 128 and not set(token) & set('@"/')


def test_failover_over_two_zones_as_aws_requires_it(prod_run):
    g = group(prod_run).plain
    # Automatic failover needs 2+ nodes, Multi-AZ needs automatic failover (replicationGroupValidateMultiAZAutomaticFailover).
    assert g["numCacheClusters"] == prod_settings().job_queue.nodes >= 2
    assert g["automaticFailoverEnabled"] is True and g["multiAzEnabled"] is True
    assert g["nodeType"].startswith("cache.")


def test_values_elasticache_stores_lowercased_are_written_lowercase(prod_run):
    """The id and the maintenance window are stored lowercased (StateFunc): any other spelling
    would show a diff on every preview, and a changed id replaces the group."""
    g = group(prod_run).plain
    for key in ("replicationGroupId", "maintenanceWindow"):
        assert g[key] == g[key].lower(), key
    assert g["replicationGroupId"] == "mlflow-prod-jobs" == replication_group_id("prod")
    assert g["applyImmediately"] is False


def test_a_group_id_aws_would_refuse_fails_before_anything_is_created():
    assert replication_group_id("Prod") == "mlflow-prod-jobs"
    for stack in ("a" * 30, "prod--eu", "prod-"):
        with pytest.raises(ValueError, match="replication group id"):
            replication_group_id(stack)


def test_the_tasks_get_the_rediss_url_as_an_ecs_secret_from_its_own_secret(prod_run):
    g = group(prod_run)
    version = prod_run.exactly("aws:secretsmanager/secretVersion:SecretVersion", "mlflow-prod-jobs")
    assert is_secret(version.inputs["secretString"])
    url = json.loads(reveal(version.inputs["secretString"]))["job_queue_url"]
    token = reveal(g.inputs["authToken"])
    assert url == f"rediss://:{token}@master.mlflow-prod-jobs.abc123.euw1.cache.amazonaws.com:6379/0"
    for family in ("mlflow-prod", "mlflow-prod-scheduler"):
        (server,) = [d for d in task_containers_of(prod_run, family) if d["name"] == "mlflow"]
        secrets = {s["name"]: s["valueFrom"] for s in server["secrets"]}
        assert secrets[contract.JOB_REDIS_URL].split(":job_queue_url::")[0].endswith("secret:mlflow-prod-jobs-AbCdEf")
        assert contract.JOB_REDIS_URL not in {e["name"] for e in server["environment"]}
        assert token not in json.dumps(server)


def task_containers_of(run, family: str) -> list[dict]:
    (task,) = [t for t in run.of_type(TASK) if t.plain["family"] == family]
    return json.loads(reveal(task.inputs["containerDefinitions"]))


def test_exactly_one_task_schedules_the_periodic_tasks(prod_run):
    periodic = contract.JOB_PERIODIC_TASKS
    assert env_of(prod_run, "mlflow-prod")[periodic] == "false"
    assert env_of(prod_run, "mlflow-prod-scheduler")[periodic] == "true"
    for family in ("mlflow-prod", "mlflow-prod-scheduler"):
        assert env_of(prod_run, family)[contract.JOB_EXECUTION] == "true"
    scheduler = prod_run.exactly(SERVICE, "mlflow-prod-scheduler").plain
    # One task, never two during a deploy: the old one stops before the new one starts.
    assert scheduler["desiredCount"] == 1
    assert (scheduler["deploymentMaximumPercent"], scheduler["deploymentMinimumHealthyPercent"]) == (100, 0)
    assert "loadBalancers" not in scheduler or not scheduler["loadBalancers"]
    server = prod_run.exactly(SERVICE, "mlflow-prod").plain
    assert scheduler["cluster"] == server["cluster"]
    assert scheduler["networkConfiguration"] == server["networkConfiguration"]
    # Autoscaling scales the servers, never the scheduler.
    (target,) = prod_run.of_type("aws:appautoscaling/target:Target")
    assert "mlflow-prod-scheduler" not in target.plain["resourceId"]
    # Same task otherwise: the scheduler's container runs the servers' command.
    main = task_containers(prod_run)["mlflow"]
    (owner,) = [d for d in task_containers_of(prod_run, "mlflow-prod-scheduler") if d["name"] == "mlflow"]
    assert owner["command"] == main["command"] and owner["image"] == main["image"]


def test_without_job_execution_nothing_of_the_queue_is_created():
    run = run_prod(tracking={**prod_section("tracking"), "jobExecution": False})
    assert run.of_type(GROUP) == [] and run.of_type(SUBNETS) == []
    assert [s.name for s in run.of_type(SERVICE)] == ["mlflow-prod"]
    env = env_of(run, "mlflow-prod")
    assert env[contract.JOB_EXECUTION] == "false" and contract.JOB_PERIODIC_TASKS not in env
    assert contract.JOB_REDIS_URL not in {s["name"] for s in task_containers(run)["mlflow"]["secrets"]}
