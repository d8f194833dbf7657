"""The whole pack against the real program's resources (dev and prod, under the mocks): no violation.

The Pulumi CLI is not available here, so this is what `pulumi preview --policy-pack policy`
checks in the pull-request workflow, run through pulumi-policy's own analyzer.
"""

from __future__ import annotations

import json

import pytest
from rules import ALL_RULES

from tests.mocks.aws_fixtures import aws_calls, aws_outputs
from tests.policy.harness import analyze, evaluate, record
from tests.pulumi_mocks import stack_config


def prod_config(**sections: dict) -> dict[str, str]:
    config = stack_config("prod")
    for section, changes in sections.items():
        key = f"mlflow-platform:{section}"
        config[key] = json.dumps({**json.loads(config[key]), **changes})
    return config


@pytest.fixture(scope="module")
def dev():
    return record(stack_config("dev"), "dev")


@pytest.fixture(scope="module")
def prod():
    return record(prod_config(), "prod", aws_outputs, aws_calls)


def covered(recorded) -> set[str]:
    """Rules that had something of theirs to look at."""
    types = {r.type for r in recorded.resources()}
    return {rule.id for rule in ALL_RULES if types & set(rule.types)}


def test_the_dev_stack_passes_every_rule(dev):
    assert analyze(dev.resources(raw=True), "dev") == []
    assert {rule.id for rule in ALL_RULES if rule.id.startswith("docker-")} <= covered(dev)


def test_the_dev_stack_with_tls_and_replicas_passes_every_rule():
    config = stack_config("dev")
    config["mlflow-platform:proxy"] = json.dumps({"tls": True, "port": 8443})
    config["mlflow-platform:tracking"] = json.dumps({"replicas": 2})
    assert analyze(record(config, "dev").resources(raw=True), "dev") == []


def test_the_dev_stack_with_observability_passes_every_rule():
    """Grafana publishes, on loopback: the one port the rule allows beside the proxy's."""
    config = stack_config("dev")
    config["mlflow-platform:observability"] = json.dumps({"enabled": True})
    recorded = record(config, "dev")
    published = [r.name for r in recorded.resources() if r.props.get("ports")]
    assert sorted(published) == ["grafana-grafana", "proxy-nginx"]
    assert analyze(recorded.resources(raw=True), "dev") == []


def test_the_dev_stack_with_seaweedfs_passes_every_rule():
    config = stack_config("dev")
    config["mlflow-platform:artifactStore"] = json.dumps({"engine": "seaweedfs"})
    assert analyze(record(config, "dev").resources(raw=True), "dev") == []


@pytest.mark.parametrize("engine", ["minio", "seaweedfs"])
def test_the_object_store_rule_reads_the_real_containers(engine):
    """Not vacuous on the program: without its key file, or the server's bucket default, the
    real containers fail it."""
    from dataclasses import replace

    from tests.policy.harness import rules_by_id

    config = stack_config("dev")
    config["mlflow-platform:artifactStore"] = json.dumps({"engine": engine})
    resources = record(config, "dev").resources()
    rule = rules_by_id()["docker-object-store-encrypted"]
    key_file = {"minio": "/run/secrets/minio-kms-key", "seaweedfs": "/etc/seaweedfs/security.toml"}[engine]
    broken = []
    for r in resources:
        if r.name == f"artifact-store-{engine}":
            r = replace(r, props={**r.props, "uploads": [u for u in r.props["uploads"] if u["file"] != key_file]})
        elif r.name == "tracking-server-mlflow-0":
            envs = [e for e in r.props["envs"] if not e.startswith("MLFLOW_BOOT_BUCKET_ENCRYPTION=")]
            r = replace(r, props={**r.props, "envs": envs})
        broken.append(r)
    assert evaluate(rule, resources) == []
    assert sorted(name for name, _ in evaluate(rule, broken)) == [
        f"artifact-store-{engine}",
        "tracking-server-mlflow-0",
    ]


def test_the_prod_stack_passes_every_rule(prod):
    assert analyze(prod.resources(raw=True), "prod") == []
    aws_rules = {rule.id for rule in ALL_RULES if not rule.id.startswith("docker-")}
    assert aws_rules <= covered(prod), f"rules with nothing to check in prod: {aws_rules - covered(prod)}"


def test_the_prod_stack_with_sign_in_at_the_alb_passes_every_rule():
    """OIDC adds ALB egress tcp/443 to 0.0.0.0/0 (the IdP's endpoints): named, described, not all traffic."""
    oidc = {"issuer": "https://login.example.com", "authorizationEndpoint": "https://login.example.com/authorize",
            "tokenEndpoint": "https://login.example.com/token", "userInfoEndpoint": "https://login.example.com/userinfo",
            "clientId": "mlflow", "clientSecret": "not-in-plain-text"}  # fmt: skip
    config = stack_config("prod")
    config["mlflow-platform:auth"] = json.dumps({"mode": "oidc", "oidc": oidc})
    recorded = record(config, "prod", aws_outputs, aws_calls, secret_keys=["mlflow-platform:auth"])
    egress = [r.plain for r in recorded.run.of_type("aws:vpc/securityGroupEgressRule:SecurityGroupEgressRule")]
    assert any(r["cidrIpv4"] == "0.0.0.0/0" and r["fromPort"] == 443 and "identity provider" in r["description"]
               for r in egress if r.get("cidrIpv4"))  # fmt: skip
    assert analyze(recorded.resources(raw=True), "prod") == []


def test_the_joins_hold_without_property_dependencies(prod):
    """Same verdict from the engine's plain dependency lists (older state files have no property dependencies)."""
    from dataclasses import replace

    bare = [replace(r, property_dependencies={}) for r in prod.resources()]
    assert [(rule.id, v) for rule in ALL_RULES for v in evaluate(rule, bare)] == []


def test_a_prod_config_that_breaks_rules_is_caught_and_dev_exemptions_hold():
    """Multi-AZ and deletion protection off: mandatory violations in prod, exempt under the dev profile."""
    broken = record(
        prod_config(database={"multiAz": False, "deletionProtection": False}), "prod", aws_outputs, aws_calls
    ).resources(raw=True)
    found = sorted((d.policy, d.level, d.message.split("\n")[1]) for d in analyze(broken, "prod"))
    assert found == [
        ("rds-deletion-protection", "mandatory", "deletionProtection must be true"),
        ("rds-multi-az", "mandatory", "multiAz must be true"),
    ]
    assert analyze(broken, "dev") == []


def test_the_prod_load_balancer_is_caught_without_its_web_acl(prod):
    """The real program's ALB, its association removed: alb-waf-associated names it, nothing else fires."""
    association = "aws:wafv2/webAclAssociation:WebAclAssociation"
    stripped = [r for r in prod.resources(raw=True) if r.type != association]
    found = sorted((d.policy, d.message.split("\n")[1]) for d in analyze(stripped, "prod"))
    assert found == [
        ("alb-waf-associated", "LoadBalancer 'mlflow-prod' is internet-facing and has no WebAclAssociation")
    ]


@pytest.mark.parametrize(
    "balancer",
    [
        {"wafAclArn": "arn:aws:wafv2:eu-west-1:123456789012:regional/webacl/corp/0a1b2c3d-0000-1111-2222-333344445555"},
        {"internal": True, "waf": {"enabled": False}},
    ],
    ids=["an ACL of your own", "internal without WAF"],
)
def test_the_prod_stack_without_the_programs_web_acl_passes_where_config_allows_it(balancer):
    section = {k: v for k, v in json.loads(stack_config("prod")["mlflow-platform:loadBalancer"]).items() if k != "waf"}
    config = stack_config("prod")
    config["mlflow-platform:loadBalancer"] = json.dumps({**section, **balancer})
    assert analyze(record(config, "prod", aws_outputs, aws_calls).resources(raw=True), "prod") == []
