"""AwsPlatform, the wiring: explicit providers, type tokens, outputs, no secret in plain text,
and the creation order between components.
"""

from __future__ import annotations

import json
import re

from tests.mocks.prod_helpers import ACCOUNT, REGION, generated_value, log_group_name, reveal, run_prod, strip_secrets


def test_every_custom_resource_has_an_explicit_provider(prod_run):
    providers = {r.typ for r in prod_run.custom if r.typ.startswith("pulumi:providers:")}
    assert providers == {"pulumi:providers:aws", "pulumi:providers:docker", "pulumi:providers:random"}
    missing = [(r.typ, r.name) for r in prod_run.custom if not r.typ.startswith("pulumi:providers:") and not r.provider]
    assert missing == []
    for r in prod_run.custom:
        if r.provider:
            package = r.typ.split(":")[0]
            assert re.search(rf"[:$]pulumi:providers:{package}::", r.provider), (r.typ, r.provider)


def test_aws_provider_is_pinned_to_the_region_and_account(prod_run):
    provider = prod_run.one("pulumi:providers:aws").plain
    assert provider["region"] == REGION
    assert json.loads(provider["allowedAccountIds"]) == [ACCOUNT]
    tags = json.loads(provider["defaultTags"])["tags"]
    assert tags["project"] == "mlflow-platform" and tags["stack"] == "prod"


def test_components_use_the_aws_type_tokens(prod_run):
    components = {r.typ for r in prod_run.resources if not r.custom}
    assert components >= {
        "mlflow-platform:aws:Platform", "mlflow-platform:aws:Network", "mlflow-platform:aws:SecurityGroups",
        "mlflow-platform:aws:MetadataStore", "mlflow-platform:aws:ArtifactStore", "mlflow-platform:aws:ImageRegistry",
        "mlflow-platform:aws:LoadBalancer", "mlflow-platform:aws:TrackingServer", "mlflow-platform:aws:LogArchive",
    }  # fmt: skip
    assert all(t.startswith("mlflow-platform:aws:") for t in components)


def test_outputs_are_the_https_url_and_secret_credentials(prod_run):
    uri, uri_secret = prod_run.outputs["trackingUri"]
    assert uri == "https://mlflow.example.com" and not uri_secret
    assert prod_run.outputs["username"] == ("admin", False)
    password, password_secret = prod_run.outputs["password"]
    assert password_secret and len(password) >= 12
    env, env_secret = prod_run.outputs["clientEnv"]
    assert env_secret and "MLFLOW_TRACKING_URI='https://mlflow.example.com'" in env


def test_no_generated_secret_appears_in_plain_text_anywhere(prod_run):
    # The master password is RDS's alone (test_prod_database.py): the servers' role's is ours.
    db_password = generated_value(prod_run.one("random:index/randomPassword:RandomPassword", "db-server-password"))
    auth = json.loads(
        reveal(prod_run.one("aws:secretsmanager/secretVersion:SecretVersion", "auth").inputs["secretString"])
    )
    values = [db_password, *auth.values(), prod_run.outputs["password"][0]]
    assert all(v and len(v) >= 32 for v in values)
    for resource in prod_run.resources:
        text = json.dumps(strip_secrets(resource.inputs))
        assert not any(v in text for v in values), f"a secret leaks through {resource.typ} {resource.name}"
    plain_outputs = json.dumps({k: v for k, (v, secret) in prod_run.outputs.items() if not secret})
    assert not any(v in plain_outputs for v in values)


def test_creation_order_closes_every_window(prod_run):
    service = prod_run.exactly("aws:ecs/service:Service", "mlflow-prod")
    # Tasks start only once they may read their secrets and bucket, behind a listener.
    for dependency in (prod_run.one("aws:iam/rolePolicy:RolePolicy", "execution"), prod_run.named("mlflow-prod-task-artifacts"),
                       prod_run.named("mlflow-prod-https")):  # fmt: skip
        assert prod_run.depends_on(service, dependency), dependency.name
    # A bucket policy is never applied before the public-access block.
    for bucket in ("mlflow-prod-artifacts", "mlflow-prod-access-logs"):
        bucket_policy = next(r for r in prod_run.of_type("aws:s3/bucketPolicy:BucketPolicy") if r.name == bucket)
        block = next(
            r for r in prod_run.of_type("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock") if r.name == bucket
        )
        assert prod_run.depends_on(bucket_policy, block), bucket
    # Access logs and flow logs switch on after the log bucket lets them write.
    log_policy = prod_run.one("aws:s3/bucketPolicy:BucketPolicy", "access-logs")
    assert prod_run.depends_on(prod_run.one("aws:lb/loadBalancer:LoadBalancer"), log_policy)
    assert prod_run.depends_on(prod_run.one("aws:ec2/flowLog:FlowLog"), log_policy)
    # RDS exports into log groups that already have a retention period.
    db = prod_run.one("aws:rds/instance:Instance")
    for group in prod_run.of_type("aws:cloudwatch/logGroup:LogGroup"):
        if log_group_name(group).startswith("/aws/rds/"):
            assert prod_run.depends_on(db, group)


def test_every_cloudwatch_log_group_keeps_logs_a_year_by_default_and_90_days_at_least(prod_run):
    """Container, RDS (postgresql, upgrade) and WAF logs: one setting; the audit log its own."""
    groups = prod_run.of_type("aws:cloudwatch/logGroup:LogGroup")
    assert len(groups) == 5
    assert {g.plain["retentionInDays"] for g in groups} == {365}
    shortest = run_prod(logs={"retentionDays": 90, "auditRetentionDays": 90, "accessLogExpirationDays": 365})
    assert {g.plain["retentionInDays"] for g in shortest.of_type("aws:cloudwatch/logGroup:LogGroup")} == {90}
    refused = run_prod(raise_errors=False, logs={"retentionDays": 30})
    assert "logs.retentionDays" in str(refused.error) and "at least 90" in str(refused.error)
    assert refused.of_type("aws:cloudwatch/logGroup:LogGroup") == []
