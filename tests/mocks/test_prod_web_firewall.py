"""WebFirewall: the WAFv2 web ACL on the load balancer, sized for MLflow's traffic, and its logs."""

from __future__ import annotations

import fnmatch
import json
import re

import pytest

from components.aws.web_firewall import COUNTED_COMMON_RULES, OUTSIDE_COMMON_RULES_PATH
from components.specs import otlp
from tests.mocks.prod_helpers import (
    ACCOUNT,
    AUTH_IS_SECRET,
    COGNITO,
    OIDC,
    REGION,
    log_group_name,
    prod_section,
    reveal,
    run_prod,
)

ACL = "aws:wafv2/webAcl:WebAcl"
ASSOCIATION = "aws:wafv2/webAclAssociation:WebAclAssociation"
LOGGING = "aws:wafv2/webAclLoggingConfiguration:WebAclLoggingConfiguration"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
OWN_ACL = f"arn:aws:wafv2:{REGION}:{ACCOUNT}:regional/webacl/corporate/0a1b2c3d-0000-1111-2222-333344445555"


def balancer(**changes) -> dict:
    section = prod_section("loadBalancer")
    return {**{k: v for k, v in section.items() if k != "waf"}, **changes}


def rules(run) -> dict[str, dict]:
    return {rule["name"]: rule for rule in run.one(ACL).plain["rules"]}


def test_the_load_balancer_gets_a_regional_web_acl_that_allows_what_no_rule_blocks(prod_run):
    acl = prod_run.one(ACL)
    assert acl.plain["scope"] == "REGIONAL"
    assert acl.plain["defaultAction"] == {"allow": {}}
    association = prod_run.one(ASSOCIATION).plain
    alb = prod_run.one("aws:lb/loadBalancer:LoadBalancer")
    assert association["resourceArn"] == f"arn:aws:lb:{REGION}:{ACCOUNT}:{alb.name}"
    assert association["webAclArn"] == f"arn:aws:wafv2:{REGION}:{ACCOUNT}:{acl.name}"
    assert prod_run.depends_on(prod_run.one(ASSOCIATION), acl)


def test_rules_run_rate_limit_first_then_the_two_aws_managed_groups(prod_run):
    ordered = sorted(prod_run.one(ACL).plain["rules"], key=lambda r: r["priority"])
    assert [r["name"] for r in ordered] == ["rate-limit-per-ip", "aws-known-bad-inputs", "aws-common-rule-set"]
    assert [r["priority"] for r in ordered] == [0, 1, 2]
    groups = {r["name"]: r["statement"].get("managedRuleGroupStatement", {}).get("name") for r in ordered}
    assert groups["aws-known-bad-inputs"] == "AWSManagedRulesKnownBadInputsRuleSet"
    assert groups["aws-common-rule-set"] == "AWSManagedRulesCommonRuleSet"
    # A managed group keeps its own rules' actions (override none); a rule of ours acts itself.
    assert ordered[0]["action"] == {"block": {}} and "overrideAction" not in ordered[0]
    assert all(r["overrideAction"] == {"none": {}} and "action" not in r for r in ordered[1:])


def test_the_rate_limit_counts_per_client_address_over_the_configured_five_minutes():
    """AWS reads back evaluationWindowSec as 300 when it is not sent: sent, so no diff appears."""
    run = run_prod(loadBalancer=balancer(waf={"rateLimitPer5Minutes": 2500}))
    statement = rules(run)["rate-limit-per-ip"]["statement"]["rateBasedStatement"]
    assert statement == {"limit": 2500, "aggregateKeyType": "IP", "evaluationWindowSec": 300}


def test_the_committed_rate_limit_is_the_default(prod_run):
    statement = rules(prod_run)["rate-limit-per-ip"]["statement"]["rateBasedStatement"]
    assert statement["limit"] == prod_section("loadBalancer")["waf"]["rateLimitPer5Minutes"] == 60000


def test_known_bad_inputs_judge_every_request_unchanged(prod_run):
    """Log4Shell and Java-deserialization payloads are blocked everywhere, artifact uploads included."""
    statement = rules(prod_run)["aws-known-bad-inputs"]["statement"]["managedRuleGroupStatement"]
    assert statement == {"vendorName": "AWS", "name": "AWSManagedRulesKnownBadInputsRuleSet"}


def test_the_common_rule_set_counts_only_what_mlflow_legitimately_sends(prod_run):
    statement = rules(prod_run)["aws-common-rule-set"]["statement"]["managedRuleGroupStatement"]
    overrides = {o["name"]: o["actionToUse"] for o in statement["ruleActionOverrides"]}
    assert overrides == {"SizeRestrictions_BODY": {"count": {}}, "RestrictedExtensions_QUERYARGUMENTS": {"count": {}}}
    assert set(overrides) == set(COUNTED_COMMON_RULES)
    scope = statement["scopeDownStatement"]["notStatement"]["statement"]["regexMatchStatement"]
    assert scope["regexString"] == OUTSIDE_COMMON_RULES_PATH
    assert scope["fieldToMatch"] == {"uriPath": {}}
    assert scope["textTransformations"] == [{"priority": 0, "type": "NONE"}]


@pytest.mark.parametrize("auth", [{"mode": "oidc", "oidc": OIDC}, {"mode": "cognito", "cognito": COGNITO}])
def test_with_sign_in_at_the_alb_its_session_cookie_is_not_held_to_10_kb(auth):
    """The ALB's AWSELBAuthSessionCookie shards carry the IdP's claims, up to 16 KB in all."""
    run = run_prod(secret_keys=AUTH_IS_SECRET, auth=auth)
    statement = rules(run)["aws-common-rule-set"]["statement"]["managedRuleGroupStatement"]
    assert sorted(o["name"] for o in statement["ruleActionOverrides"]) == sorted(
        [*COUNTED_COMMON_RULES, "SizeRestrictions_Cookie_HEADER"]
    )


# The artifact service's routes (mlflow/protos/mlflow_artifacts.proto, REST and UI prefixes): a
# `log_artifact` of any size is one PUT of the file's bytes to the first one.
ARTIFACT_SERVICE = [
    "/api/2.0/mlflow-artifacts/artifacts/1/0a1b2c/artifacts/model/model.safetensors",
    "/api/2.0/mlflow-artifacts/artifacts/1/0a1b2c/artifacts/logs/train.log",
    "/ajax-api/2.0/mlflow-artifacts/artifacts/1/0a1b2c/artifacts/plot.html",
    "/api/2.0/mlflow-artifacts/mpu/create/1/0a1b2c/artifacts/weights.bin",
    "/api/2.0/mlflow-artifacts/mpu/complete/1/0a1b2c/artifacts/weights.bin",
    "/api/2.0/mlflow-artifacts/artifacts",
]
# Everything else keeps the whole common rule set (log_batch bodies over 8 KB only counted).
OTHER_ROUTES = [
    "/api/2.0/mlflow/runs/log-batch",
    "/api/2.0/mlflow/runs/create",
    "/ajax-api/2.0/mlflow/experiments/search",
    "/get-artifact",
    "/",
    "/static-files/index.html",
    "/x/api/2.0/mlflow-artifacts/artifacts/a",
    "/api/2.0/mlflow/mlflow-artifacts/",
]


@pytest.mark.parametrize("path", ARTIFACT_SERVICE)
def test_the_artifact_service_is_outside_the_common_rule_set(path):
    """Its URI path is the artifact's path (.log trips RestrictedExtensions_URIPATH) and a PUT's body
    is the file itself (an HTML plot trips CrossSiteScripting_BODY): the scope-down leaves them out."""
    assert re.search(OUTSIDE_COMMON_RULES_PATH, path)


def test_otlp_trace_exports_are_outside_the_common_rule_set_and_nothing_else_of_that_name():
    """A span batch carries an application's prompts and answers: HTML trips CrossSiteScripting_BODY,
    a URL with an address GenericRFI_BODY. The known-bad-inputs group and the rate limit still judge it."""
    assert re.search(OUTSIDE_COMMON_RULES_PATH, otlp.TRACES_PATH)
    for path in ("/v1/traces/x", "/v1/tracesx", "/x/v1/traces", "/v1/metrics", "/api/2.0/mlflow/v1/traces"):
        assert not re.search(OUTSIDE_COMMON_RULES_PATH, path), path


@pytest.mark.parametrize("path", OTHER_ROUTES)
def test_every_other_route_keeps_the_common_rule_set(path):
    assert not re.search(OUTSIDE_COMMON_RULES_PATH, path)


def test_every_rule_and_the_acl_publish_metrics_and_samples(prod_run):
    acl = prod_run.one(ACL).plain
    configs = [acl["visibilityConfig"], *(r["visibilityConfig"] for r in acl["rules"])]
    assert all(c["cloudwatchMetricsEnabled"] is True and c["sampledRequestsEnabled"] is True for c in configs)
    names = [c["metricName"] for c in configs]
    assert len(set(names)) == len(names) and all(n.startswith("mlflow-prod-") for n in names)
    assert all(re.fullmatch(r"[\w#:.\-/]{1,255}", n) for n in names)


def test_waf_logs_go_to_an_encrypted_log_group_named_as_aws_requires(prod_run):
    logging = prod_run.one(LOGGING).plain
    group = prod_run.one(LOG_GROUP, "-waf-logs")
    name = log_group_name(group)
    # AWS refuses a CloudWatch destination whose group name does not start with aws-waf-logs-.
    assert name.startswith("aws-waf-logs-mlflow-prod-")
    assert logging["logDestinationConfigs"] == [f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{name}"]
    assert logging["resourceArn"] == f"arn:aws:wafv2:{REGION}:{ACCOUNT}:{prod_run.one(ACL).name}"
    key = prod_run.one("aws:kms/key:Key", "-logs")
    assert group.plain["kmsKeyId"] == f"arn:aws:kms:{REGION}:{ACCOUNT}:key/{key.name}"
    assert group.plain["retentionInDays"] == prod_section("logs")["retentionDays"] == 365


def test_the_logs_key_lets_cloudwatch_logs_encrypt_the_waf_log_group(prod_run):
    """The key policy's one grant to CloudWatch Logs covers this group's ARN (encryption context)."""
    key = prod_run.one("aws:kms/key:Key", "-logs")
    (grant,) = [
        s for s in json.loads(reveal(key.inputs["policy"]))["Statement"] if s["Sid"] == "CloudWatchLogsOfThisStack"
    ]
    assert grant["Principal"] == {"Service": f"logs.{REGION}.amazonaws.com"}
    assert {"kms:Encrypt*", "kms:Decrypt*", "kms:GenerateDataKey*"} <= set(grant["Action"])
    patterns = grant["Condition"]["ArnLike"]["kms:EncryptionContext:aws:logs:arn"]
    group_arn = prod_run.one(LOGGING).plain["logDestinationConfigs"][0]
    assert any(fnmatch.fnmatchcase(group_arn, pattern) for pattern in patterns)


def test_waf_logs_never_hold_credentials_and_keep_every_verdict_but_a_plain_allow(prod_run):
    logging = prod_run.one(LOGGING).plain
    # Lower case: the API returns header names so, and a mixed-case name would diff on every preview.
    assert logging["redactedFields"] == [{"singleHeader": {"name": "authorization"}},
                                         {"singleHeader": {"name": "cookie"}}]  # fmt: skip
    (keep,) = logging["loggingFilter"]["filters"]
    assert logging["loggingFilter"]["defaultBehavior"] == "DROP"
    assert keep["behavior"] == "KEEP" and keep["requirement"] == "MEETS_ANY"
    assert sorted(c["actionCondition"]["action"] for c in keep["conditions"]) == ["BLOCK", "COUNT", "EXCLUDED_AS_COUNT"]


def test_an_acl_of_your_own_replaces_the_programs():
    run = run_prod(loadBalancer=balancer(wafAclArn=OWN_ACL))
    assert run.of_type(ACL) == [] and run.of_type(LOGGING) == []
    assert [r.plain["webAclArn"] for r in run.of_type(ASSOCIATION)] == [OWN_ACL]


def test_an_internal_load_balancer_may_go_without_a_web_acl():
    run = run_prod(loadBalancer=balancer(internal=True, waf={"enabled": False}))
    assert run.of_type(ACL) == [] and run.of_type(ASSOCIATION) == [] and run.of_type(LOGGING) == []
    assert [g for g in run.of_type(LOG_GROUP) if "waf" in g.name] == []


def test_an_internet_facing_load_balancer_without_a_web_acl_is_refused():
    run = run_prod(raise_errors=False, loadBalancer=balancer(waf={"enabled": False}))
    assert "loadBalancer.waf.enabled" in str(run.error) and "internet-facing" in str(run.error)
    assert run.of_type(ACL) == [] and run.of_type("aws:lb/loadBalancer:LoadBalancer") == []
