"""The task roles (lib/iam.py): who may assume them, and what the execution role may do."""

from __future__ import annotations

import json

from tests.mocks.aws_fixtures import MASTER_SECRET_ARN
from tests.mocks.prod_helpers import (
    ACCOUNT,
    REGION,
    aws_outputs,
    container,
    log_group_name,
    policy,
    prod_section,
    run_prod,
    statements,
)


def test_roles_trust_only_ecs_tasks_of_this_account(prod_run):
    # The database proxy's role trusts RDS, its monitoring role RDS monitoring
    # (test_prod_database.py), the backup role AWS Backup (test_prod_backup.py), gc's scheduler
    # role EventBridge Scheduler (test_prod_gc.py); every other role, ECS tasks.
    others = ("-db-proxy", "-db-monitoring", "-backup", "-gc-scheduler")
    for role in [r for r in prod_run.of_type("aws:iam/role:Role") if not r.name.endswith(others)]:
        (trust,) = json.loads(role.plain["assumeRolePolicy"])["Statement"]
        assert trust["Principal"] == {"Service": "ecs-tasks.amazonaws.com"} and trust["Action"] == "sts:AssumeRole"
        assert trust["Condition"]["StringEquals"] == {"aws:SourceAccount": ACCOUNT}
        assert trust["Condition"]["ArnLike"] == {"aws:SourceArn": f"arn:aws:ecs:{REGION}:{ACCOUNT}:*"}
        assert not role.plain.get("managedPolicyArns") and not role.plain.get("inlinePolicies")


def test_execution_role_may_only_pull_read_its_secrets_and_log(prod_run):
    doc = policy(prod_run.one("aws:iam/rolePolicy:RolePolicy", "execution"))
    actions = {a for s in doc["Statement"] for a in s["Action"]}
    assert actions == {
        "ecr:GetAuthorizationToken", "ecr:BatchCheckLayerAvailability", "ecr:GetDownloadUrlForLayer", "ecr:BatchGetImage",
        "logs:CreateLogStream", "logs:PutLogEvents", "secretsmanager:GetSecretValue", "kms:Decrypt",
    }  # fmt: skip
    wildcard = [s["Sid"] for s in doc["Statement"] if "*" in s["Resource"]]
    assert wildcard == ["EcrToken"]
    secret_arns = {r.name: f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:{r.name}-AbCdEf"
                   for r in prod_run.of_type("aws:secretsmanager/secret:Secret")}  # fmt: skip
    # Ours, and the master user's secret that RDS manages (the boot step's).
    assert set(statements(doc, "ReadTheTaskSecrets")["Resource"]) == {*secret_arns.values(), MASTER_SECRET_ARN}
    (group,) = [g for g in prod_run.of_type("aws:cloudwatch/logGroup:LogGroup") if g.name == "mlflow-prod"]
    assert group.plain["namePrefix"] == "/mlflow/prod/tracking-server-" and "name" not in group.plain
    group_name = aws_outputs(group.typ, group.name, group.plain)["name"]
    audit_name = log_group_name(prod_run.exactly("aws:cloudwatch/logGroup:LogGroup", "mlflow-prod-audit"))
    assert statements(doc, "WriteContainerLogs")["Resource"] == [
        f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{name}:log-stream:*" for name in (group_name, audit_name)
    ]
    assert container(prod_run)["logConfiguration"]["options"]["awslogs-group"] == group_name


def secret_of(value_from: str) -> str:
    """<secret arn>:<json key>::<version id, or nothing> -> the secret's ARN (7 colon-separated fields)."""
    return ":".join(value_from.split(":")[:7])


def test_the_execution_role_reads_exactly_the_secrets_the_container_is_handed(prod_run):
    """Both are made of one map of secret references: each secret granted once, no other."""
    without_basic_auth = run_prod(
        auth={"mode": "none"}, loadBalancer={**prod_section("loadBalancer"), "internal": True}
    )
    # The servers' database role's, RDS's master secret, MLflow's encryption keys', the job
    # queue's URL, and basic-auth's.
    for run, secrets in ((prod_run, 5), (without_basic_auth, 4)):
        doc = policy(run.one("aws:iam/rolePolicy:RolePolicy", "execution"))
        granted = statements(doc, "ReadTheTaskSecrets")["Resource"]
        handed = {secret_of(s["valueFrom"]) for s in container(run)["secrets"]}
        assert sorted(granted) == sorted(handed) and len(granted) == secrets
