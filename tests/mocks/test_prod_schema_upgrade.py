"""The one-off schema upgrade on prod: its task definition and what the stack exports for
deploy/aws/upgrade.py (docs/operations.md, "Upgrading MLflow").

Provider facts (terraform-provider-aws, internal/service/ecs/task_definition.go): every argument of
aws_ecs_task_definition is ForceNew, so a new image registers a new revision of the family (the
previous one is deregistered); a family of its own means a revision of it never changes the
service's `task_definition` input, so updating it (`pulumi up --target`) rolls no server task.
"""

from __future__ import annotations

import json

from tests.mocks.prod_helpers import container
from tests.pulumi_mocks import ProgramRun, reveal

TASK = "aws:ecs/taskDefinition:TaskDefinition"


def upgrade_container(run: ProgramRun) -> dict:
    (definition,) = json.loads(reveal(run.exactly(TASK, "mlflow-prod-schema-upgrade").inputs["containerDefinitions"]))
    return definition


def test_servers_refuse_a_schema_that_is_not_current_and_dev_servers_migrate(prod_run, dev_run):
    """Prod: a rolling deploy keeps old tasks writing, so a booting task must never migrate."""
    prod_env = {e["name"]: e["value"] for e in container(prod_run)["environment"]}
    assert prod_env["MLFLOW_BOOT_SCHEMA"] == "require-current"
    dev = next(
        r for r in dev_run.of_type("docker:index/container:Container") if r.name.startswith("tracking-server-mlflow")
    )
    assert "MLFLOW_BOOT_SCHEMA=migrate" in reveal(dev.inputs["envs"])


def test_the_upgrade_task_runs_the_servers_container_with_the_upgrade_command(prod_run):
    server, upgrade = container(prod_run), upgrade_container(prod_run)
    # The same entrypoint (`python -m mlflow_boot`), image, env, secrets (the owner's among them),
    # user and read-only root: the new image's own migrations, with the servers' exact settings.
    assert upgrade["entryPoint"] == server["entryPoint"] == ["python", "-m", "mlflow_boot"]
    assert upgrade["command"] == ["upgrade"]
    for key in ("image", "environment", "secrets", "user", "readonlyRootFilesystem", "mountPoints", "linuxParameters"):
        assert upgrade[key] == server[key], key
    assert "MLFLOW_DB_OWNER_PASSWORD" in {s["name"] for s in upgrade["secrets"]}
    # Nothing listens: no port, no health check (ECS would mark a standalone task unhealthy).
    assert "portMappings" not in upgrade and "healthCheck" not in upgrade
    options = upgrade["logConfiguration"]["options"]
    assert options["awslogs-group"] == server["logConfiguration"]["options"]["awslogs-group"]
    assert options["awslogs-stream-prefix"] == "schema-upgrade"


def test_the_upgrade_task_is_a_family_of_its_own_with_the_servers_roles_and_size(prod_run):
    server = prod_run.exactly(TASK, "mlflow-prod").plain
    upgrade = prod_run.exactly(TASK, "mlflow-prod-schema-upgrade").plain
    assert (server["family"], upgrade["family"]) == ("mlflow-prod", "mlflow-prod-schema-upgrade")
    for key in ("taskRoleArn", "executionRoleArn", "cpu", "memory", "requiresCompatibilities", "networkMode",
                "ephemeralStorage", "volumes", "runtimePlatform"):  # fmt: skip
        assert upgrade[key] == server[key], key
    service = prod_run.exactly("aws:ecs/service:Service", "mlflow-prod")
    task = prod_run.exactly(TASK, "mlflow-prod-schema-upgrade")
    assert task.urn not in service.dependencies  # registering it never touches the service


def test_the_upgrade_task_waits_for_the_secret_values_it_is_handed(prod_run):
    task = prod_run.exactly(TASK, "mlflow-prod-schema-upgrade")
    for version in prod_run.of_type("aws:secretsmanager/secretVersion:SecretVersion"):
        assert version.urn in task.property_dependencies["containerDefinitions"], version.name


def test_the_stack_exports_what_the_deploy_script_needs(prod_run):
    exported, secret = prod_run.outputs["schemaUpgrade"]
    assert secret is False
    upgrade = prod_run.exactly(TASK, "mlflow-prod-schema-upgrade")
    assert set(exported) == {
        "cluster", "service", "taskDefinitionFamily", "containerName", "subnets", "securityGroups", "scalableResourceId",
        "logGroup", "logStreamPrefix", "targets", "dbInstanceIdentifier", "schedulerService",
    }  # fmt: skip
    # Stopped with the servers (deploy/aws/upgrade.py): it writes job rows too.
    assert exported["schedulerService"] == prod_run.exactly("aws:ecs/service:Service", "mlflow-prod-scheduler").name
    assert exported["taskDefinitionFamily"] == "mlflow-prod-schema-upgrade"  # RunTask: its latest revision
    assert exported["containerName"] == "mlflow" and exported["logStreamPrefix"] == "schema-upgrade/mlflow"
    assert exported["dbInstanceIdentifier"].startswith("mlflow-prod-")
    assert exported["scalableResourceId"].startswith("service/")
    assert exported["securityGroups"] == [container_security_group(prod_run)]
    # Updated alone before the upgrade: the image build (and its tag suffix) and the upgrade task;
    # never the service, whose rollout waits until the schema is upgraded.
    by_urn = {r.urn: r for r in prod_run.resources}
    targeted = sorted((by_urn[urn].typ, by_urn[urn].name) for urn in exported["targets"])
    assert targeted == [
        (TASK, "mlflow-prod-schema-upgrade"),
        ("docker:index/image:Image", "mlflow-prod-mlflow-mlflow"),
        ("random:index/randomId:RandomId", "mlflow-prod-mlflow-tag"),
    ], targeted
    assert upgrade.urn in exported["targets"]


def container_security_group(run: ProgramRun) -> str:
    service = run.exactly("aws:ecs/service:Service", "mlflow-prod").plain
    (group,) = service["networkConfiguration"]["securityGroups"]
    return group
