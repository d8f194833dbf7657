"""The deploy role's policy (deploy/aws/deploy-role-policy.json) covers everything the program does.

The first `pulumi up` in a new account also creates the service-linked roles of ELB, ECS, RDS and
Application Auto Scaling (AWS makes them on first use, as the caller): a policy scoped to
`role/mlflow-*` alone fails that `up` with AccessDenied. Each service the program registers a
resource in must be allowed, for every shape of the stack config.
"""

from __future__ import annotations

import fnmatch
import json

import pytest

from tests.mocks.prod_helpers import ACCOUNT, AUTH_IS_SECRET, GC, OIDC, REGION, REPO_ROOT, prod_section, run_prod

POLICY_FILE = REPO_ROOT / "deploy" / "aws" / "deploy-role-policy.json"

# Pulumi module of a resource type -> the IAM service prefix its API calls use.
IAM_PREFIX = {
    "acm": "acm", "appautoscaling": "application-autoscaling", "backup": "backup", "scheduler": "scheduler",
    "ec2": "ec2", "ecr": "ecr", "ecs": "ecs", "elasticache": "elasticache",
    "iam": "iam", "kms": "kms", "lb": "elasticloadbalancing", "rds": "rds", "route53": "route53",
    "s3": "s3", "secretsmanager": "secretsmanager", "sns": "sns", "vpc": "ec2", "wafv2": "wafv2",
}  # fmt: skip
# cloudwatch holds both CloudWatch Logs and CloudWatch itself.
CLOUDWATCH_LOGS_TYPES = {"aws:cloudwatch/logGroup:LogGroup"}
# Resource types whose first creation in an account makes AWS create a service-linked role.
SERVICE_LINKED_ROLES = {
    "aws:lb/loadBalancer:LoadBalancer": "elasticloadbalancing.amazonaws.com",
    "aws:lb/targetGroup:TargetGroup": "elasticloadbalancing.amazonaws.com",
    "aws:ecs/cluster:Cluster": "ecs.amazonaws.com",
    "aws:ecs/service:Service": "ecs.amazonaws.com",
    "aws:rds/instance:Instance": "rds.amazonaws.com",
    "aws:appautoscaling/target:Target": "ecs.application-autoscaling.amazonaws.com",
    # Amazon Inspector makes its role when enhanced scanning is turned on (ECR user guide,
    # "IAM permissions required for enhanced scanning").
    "aws:ecr/registryScanningConfiguration:RegistryScanningConfiguration": "inspector2.amazonaws.com",
    # AWS Backup makes AWSServiceRoleForBackup on first use through the API (AWS Backup developer
    # guide, using-service-linked-roles-AWSServiceRoleForBackup).
    "aws:backup/plan:Plan": "backup.amazonaws.com",
    # ElastiCache makes AWSServiceRoleForElastiCache with the first cache of an account (ElastiCache
    # user guide, using-service-linked-roles).
    "aws:elasticache/replicationGroup:ReplicationGroup": "elasticache.amazonaws.com",
}
# Where the policy names single actions rather than a whole service: what each resource's create,
# read, update and delete call (terraform-provider-aws internal/service/wafv2/web_acl.go,
# web_acl_association.go, web_acl_logging_configuration.go; tags through the wafv2 tagging API),
# what WAF needs of the caller to deliver to CloudWatch Logs (it adds a resource policy to the
# account), and what enhanced scanning needs of Inspector (the ECR user guide's policy).
REQUIRED_ACTIONS = {
    "aws:wafv2/webAcl:WebAcl": ["wafv2:CreateWebACL", "wafv2:GetWebACL", "wafv2:UpdateWebACL", "wafv2:DeleteWebACL",
                                "wafv2:ListTagsForResource", "wafv2:TagResource", "wafv2:UntagResource"],
    "aws:wafv2/webAclAssociation:WebAclAssociation": ["wafv2:AssociateWebACL", "wafv2:GetWebACLForResource",
                                                      "wafv2:DisassociateWebACL", "elasticloadbalancing:SetWebAcl"],
    "aws:wafv2/webAclLoggingConfiguration:WebAclLoggingConfiguration": [
        "wafv2:PutLoggingConfiguration", "wafv2:GetLoggingConfiguration", "wafv2:DeleteLoggingConfiguration",
        "logs:CreateLogDelivery", "logs:DeleteLogDelivery", "logs:PutResourcePolicy", "logs:DescribeResourcePolicies",
        "logs:DescribeLogGroups"],
    # CreateBackupVault with a key mounts it (`backup-storage:MountCapsule`, which backup:* does
    # not cover) and grants AWS Backup the key (AWS Backup developer guide, create-a-vault).
    "aws:backup/vault:Vault": ["backup:CreateBackupVault", "backup-storage:MountCapsule", "kms:CreateGrant",
                               "kms:DescribeKey", "kms:RetireGrant"],
    "aws:scheduler/schedule:Schedule": ["scheduler:CreateSchedule", "scheduler:GetSchedule",
                                        "scheduler:UpdateSchedule", "scheduler:DeleteSchedule"],
    "aws:ecr/registryScanningConfiguration:RegistryScanningConfiguration": [
        "ecr:PutRegistryScanningConfiguration", "ecr:GetRegistryScanningConfiguration", "inspector2:Enable",
        "inspector2:Disable", "inspector2:ListFindings", "inspector2:ListAccountPermissions", "inspector2:ListCoverage"],
}  # fmt: skip


def deploy_policy() -> dict:
    return json.loads(POLICY_FILE.read_text())


def allowed_actions(policy: dict) -> list[str]:
    return [action for s in policy["Statement"] if s["Effect"] == "Allow"
            for action in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])]  # fmt: skip


def prefix_of(typ: str) -> str:
    module = typ.split(":")[1].split("/")[0]
    if module == "cloudwatch":
        return "logs" if typ in CLOUDWATCH_LOGS_TYPES else "cloudwatch"
    assert module in IAM_PREFIX, f"{typ}: add its IAM service prefix to IAM_PREFIX and the deploy role's policy"
    return IAM_PREFIX[module]


@pytest.fixture(scope="module")
def runs(prod_run):
    """Every shape of prod stack the config can ask for."""
    balancer = prod_section("loadBalancer")
    without_certificate = {k: v for k, v in balancer.items() if k != "certificateArn"}
    # With an ACL of your own, the program makes none (loadBalancer.waf is refused alongside).
    waf = {
        **{k: v for k, v in balancer.items() if k != "waf"},
        "wafAclArn": f"arn:aws:wafv2:{REGION}:{ACCOUNT}:regional/webacl/mlflow/0a1b2c3d-0000-1111-2222-333344445555",
    }
    return {
        "committed": prod_run,
        "certificate created": run_prod(loadBalancer=without_certificate),
        "waf": run_prod(loadBalancer=waf),
        "enhanced scanning": run_prod(registry={"enhancedScanning": True}),
        "oidc": run_prod(secret_keys=AUTH_IS_SECRET, auth={"mode": "oidc", "oidc": OIDC}),
        "gc and a backup copy": run_prod(gc=GC, backup={"copyRegion": "eu-central-1"}),
    }


def aws_types(runs) -> set[str]:
    return {r.typ for run in runs.values() for r in run.custom if r.typ.startswith("aws:")}


def test_every_service_the_program_uses_is_allowed(runs):
    actions = allowed_actions(deploy_policy())
    types = aws_types(runs)
    assert {"aws:acm/certificate:Certificate", "aws:wafv2/webAclAssociation:WebAclAssociation"} <= types
    missing = sorted({prefix_of(t) for t in types} - {a.split(":")[0] for a in actions})
    assert missing == [], f"the deploy role's policy allows nothing of {missing}"


def test_the_actions_each_resource_needs_are_allowed(runs):
    actions = allowed_actions(deploy_policy())
    types = aws_types(runs)
    assert set(REQUIRED_ACTIONS) <= types
    missing = sorted({needed for typ in types for needed in REQUIRED_ACTIONS.get(typ, ())
                      if not any(fnmatch.fnmatchcase(needed, allowed) for allowed in actions)})  # fmt: skip
    assert missing == []


def test_the_first_deploy_in_a_new_account_may_create_exactly_the_service_linked_roles_it_needs(runs):
    needed = {SERVICE_LINKED_ROLES[t] for t in aws_types(runs) if t in SERVICE_LINKED_ROLES}
    (slr,) = [s for s in deploy_policy()["Statement"] if s["Action"] == "iam:CreateServiceLinkedRole"]
    assert slr["Resource"] == "arn:aws:iam::*:role/aws-service-role/*"
    assert set(slr["Condition"]["StringEquals"]["iam:AWSServiceName"]) == needed == set(SERVICE_LINKED_ROLES.values())


def test_the_deploy_role_manages_and_passes_only_the_stack_roles(runs):
    policy = deploy_policy()
    iam = [
        s for s in policy["Statement"] if any(str(a).startswith("iam:") for a in allowed_actions({"Statement": [s]}))
    ]
    for statement in iam:
        resources = [statement["Resource"]] if isinstance(statement["Resource"], str) else statement["Resource"]
        assert all(r in ("arn:aws:iam::*:role/mlflow-*", "arn:aws:iam::*:role/aws-service-role/*") for r in resources)
    # Passed exactly to the services the stack's roles trust (ECS tasks; RDS for the database
    # proxy; RDS monitoring for Enhanced Monitoring, which checks PassRole for its own principal;
    # AWS Backup for the selection's role; EventBridge Scheduler for the gc schedule's role).
    trusted = {statement["Principal"]["Service"] for run in runs.values() for role in run.of_type("aws:iam/role:Role")
               for statement in json.loads(role.plain["assumeRolePolicy"])["Statement"]}  # fmt: skip
    (passing,) = [s for s in iam if s["Action"] == "iam:PassRole"]
    assert (
        set(passing["Condition"]["StringEquals"]["iam:PassedToService"])
        == trusted
        == {
            "ecs-tasks.amazonaws.com",
            "monitoring.rds.amazonaws.com",
            "rds.amazonaws.com",
            "backup.amazonaws.com",
            "scheduler.amazonaws.com",
        }
    )
    # Every role the program creates falls under role/mlflow-* (auto-named from its logical name).
    roles = [r.name for run in runs.values() for r in run.of_type("aws:iam/role:Role")]
    assert roles and all(fnmatch.fnmatch(name, "mlflow-*") for name in roles)
    assert not any(a in ("iam:*", "*") for a in allowed_actions(policy))


def test_the_deploy_role_attaches_exactly_the_managed_policies_the_stack_attaches(runs):
    """Attaching any policy to a role/mlflow-* role would let the deploy role grant itself more
    (attach AdministratorAccess, then pass the role): the statement names the policies."""
    (attach,) = [s for s in deploy_policy()["Statement"] if "iam:AttachRolePolicy" in s["Action"]]
    assert sorted(attach["Action"]) == ["iam:AttachRolePolicy", "iam:DetachRolePolicy"]
    allowed = attach["Condition"]["ArnEquals"]["iam:PolicyARN"]
    allowed = {allowed} if isinstance(allowed, str) else set(allowed)
    attached = {r.plain["policyArn"] for run in runs.values()
                for r in run.of_type("aws:iam/rolePolicyAttachment:RolePolicyAttachment")}  # fmt: skip
    assert (
        attached
        == allowed
        == {
            "arn:aws:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole",
            # AWS Backup's role: its general pair and S3's (AWS managed policy reference).
            "arn:aws:iam::aws:policy/service-role/AWSBackupServiceRolePolicyForBackup",
            "arn:aws:iam::aws:policy/service-role/AWSBackupServiceRolePolicyForRestores",
            "arn:aws:iam::aws:policy/AWSBackupServiceRolePolicyForS3Backup",
            "arn:aws:iam::aws:policy/AWSBackupServiceRolePolicyForS3Restore",
        }
    )


def test_the_docs_and_the_deploy_workflow_use_the_file():
    docs = (REPO_ROOT / "docs" / "aws.md").read_text()
    workflow = (REPO_ROOT / ".github" / "workflows" / "deploy.yml").read_text()
    assert "file://deploy/aws/deploy-role-policy.json" in docs
    assert "deploy/aws/deploy-role-policy.json" in workflow
