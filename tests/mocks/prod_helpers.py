"""What the prod tests share: the committed prod config, runs of the program under mocks, finders.

The tests of the prod stack (tests/mocks/test_prod_*.py, one file per component) import their
helpers from here only; the run of the committed config is the `prod_run` fixture (conftest.py).
Each test reads the inputs the program registered, i.e. what `pulumi up -s prod` would ask AWS for.
"""

from __future__ import annotations

import json

from components.config import parse_settings
from components.config.aws import AwsSettings
from tests.mocks.aws_fixtures import ACCOUNT, REGION, aws_calls, aws_outputs  # noqa: F401 (re-exported)
from tests.pulumi_mocks import (  # noqa: F401 (re-exported: the one import root of the prod tests)
    REPO_ROOT,
    ProgramRun,
    Resource,
    generated_value,
    is_secret,
    reveal,
    run_program,
    secret_paths,
    stack_config,
)

PROD = stack_config("prod")
BUCKET = "aws:s3/bucket:Bucket"
SG = "aws:ec2/securityGroup:SecurityGroup"
INGRESS = "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule"
EGRESS = "aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule"
LISTENER = "aws:lb/listener:Listener"

OIDC = {
    "issuer": "https://login.example.com", "authorizationEndpoint": "https://login.example.com/authorize",
    "tokenEndpoint": "https://login.example.com/token", "userInfoEndpoint": "https://login.example.com/userinfo",
    "clientId": "mlflow", "clientSecret": "not-in-plain-text",
}  # fmt: skip
COGNITO = {
    "userPoolArn": f"arn:aws:cognito-idp:{REGION}:{ACCOUNT}:userpool/{REGION}_AbCdEf123",
    "userPoolClientId": "abc123", "userPoolDomain": "auth.example.com",
}  # fmt: skip
# A scheduled gc (off in the committed config).
GC = {"olderThan": "30d", "schedule": "cron(0 2 * * ? *)"}
# What `pulumi config set --secret --path mlflow-platform:auth.oidc.clientSecret ...` marks secret.
AUTH_IS_SECRET = ("mlflow-platform:auth",)


def run_prod(secret_keys: tuple[str, ...] = (), raise_errors: bool = True, **overrides: dict | None) -> ProgramRun:
    """Run the program with the committed prod config, sections replaced by `overrides` (None
    removes one); `secret_keys`: the config keys set with `pulumi config set --secret`."""
    config = dict(PROD)
    for section, value in overrides.items():
        key = f"mlflow-platform:{section}"
        if value is None:
            config.pop(key, None)
        else:
            config[key] = json.dumps(value)
    return run_program(config, "prod", aws_outputs, aws_calls, raise_errors=raise_errors, secret_keys=secret_keys)


def prod_section(section: str) -> dict:
    return json.loads(PROD[f"mlflow-platform:{section}"])


def prod_settings() -> AwsSettings:
    """The committed prod config, parsed as the program parses it."""
    raw = {
        k.split(":", 1)[1]: json.loads(v) if v[:1] in "[{" else v
        for k, v in PROD.items()
        if k.startswith("mlflow-platform:")
    }
    settings = parse_settings(raw)
    assert isinstance(settings, AwsSettings)
    return settings


def task_containers(run: ProgramRun) -> dict[str, dict]:
    """The server task's containers by name (its family is the stack's; one-off tasks have their own)."""
    (task,) = [t for t in run.of_type("aws:ecs/taskDefinition:TaskDefinition") if t.plain["family"] == "mlflow-prod"]
    return {d["name"]: d for d in json.loads(reveal(task.inputs["containerDefinitions"]))}


def container(run: ProgramRun) -> dict:
    """The server's container."""
    return task_containers(run)["mlflow"]


def container_env(run: ProgramRun) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container(run)["environment"]}


def container_secrets(run: ProgramRun) -> dict[str, str]:
    """The container's ECS secrets: env name -> valueFrom."""
    return {s["name"]: s["valueFrom"] for s in container(run)["secrets"]}


def log_group_name(group: Resource) -> str:
    """The name AWS gives a log group: as given, or its prefix plus a unique part."""
    return aws_outputs(group.typ, group.name, group.plain)["name"]


def policy(resource: Resource) -> dict:
    return json.loads(reveal(resource.inputs["policy"]))


def statements(doc: dict, sid: str) -> dict:
    return next(s for s in doc["Statement"] if s["Sid"] == sid)


def sg_id(run: ProgramRun, role: str) -> str:
    return f"{run.one(SG, f'-{role}').name}-id"


def rules_of(run: ProgramRun, typ: str, group: str) -> list[dict]:
    return [r.plain for r in run.of_type(typ) if r.plain["securityGroupId"] == group]


def alb_egress(run: ProgramRun) -> list[tuple]:
    return sorted((r["ipProtocol"], r["fromPort"], r["toPort"], r.get("referencedSecurityGroupId") or r.get("cidrIpv4"))
                  for r in rules_of(run, EGRESS, sg_id(run, "alb")))  # fmt: skip


def task_egress(run: ProgramRun) -> list[tuple]:
    return sorted((r["fromPort"], r.get("referencedSecurityGroupId") or r.get("cidrIpv4") or r.get("prefixListId"))
                  for r in rules_of(run, EGRESS, sg_id(run, "tasks")))  # fmt: skip


def artifact(run: ProgramRun, typ: str) -> Resource:
    return run.one(typ, "artifacts")


def artifact_bucket_arn(run: ProgramRun) -> str:
    """The artifact bucket's ARN, as the mocked provider names it."""
    return f"arn:aws:s3:::{artifact(run, BUCKET).name}-0a1b2c3"


def subnet_ids(run: ProgramRun, tier: str) -> list[str]:
    return [f"{r.name}-id" for r in run.of_type("aws:ec2/subnet:Subnet") if r.plain["tags"]["tier"] == tier]


def strip_secrets(value):
    if is_secret(value):
        return "<secret>"
    if isinstance(value, dict):
        return {k: strip_secrets(v) for k, v in value.items()}
    if isinstance(value, list):
        return [strip_secrets(v) for v in value]
    return value
