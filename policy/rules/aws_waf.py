"""WAFv2: a web ACL in front of every internet-facing ALB, with rules, metrics and logs."""

from __future__ import annotations

from .base import LOAD_BALANCERS, UNKNOWN, Res, Stack, get, is_true, items, label, stack_rule

WEB_ACL = "aws:wafv2/webAcl:WebAcl"
ASSOCIATION = "aws:wafv2/webAclAssociation:WebAclAssociation"
LOGGING = "aws:wafv2/webAclLoggingConfiguration:WebAclLoggingConfiguration"
KNOWN_BAD_INPUTS = "AWSManagedRulesKnownBadInputsRuleSet"
# Headers that carry credentials to this stack (basic-auth, the ALB's sign-in session cookie).
MUST_REDACT = ("authorization",)


def _internet_facing(lb: Res) -> bool:
    internal = is_true(lb.get("internal"))
    return lb.get("loadBalancerType", "application") == "application" and internal is False


@stack_rule(
    "alb-waf-associated",
    ["CKV2_AWS_28", "AWS Config alb-waf-enabled"],
    "Each internet-facing ALB has a WAFv2 web ACL",
    [*LOAD_BALANCERS, ASSOCIATION],
)
def alb_waf(stack: Stack) -> list[tuple[str, str]]:
    return [
        (lb.urn, f"{label(lb)} is internet-facing and has no WebAclAssociation")
        for lb in stack.of(*LOAD_BALANCERS)
        if _internet_facing(lb) and not stack.joined_to(lb, "resourceArn", ASSOCIATION)
    ]


@stack_rule(
    "waf-logging",
    ["FSBP WAF.11", "CKV2_AWS_31"],
    "Each web ACL logs, with the Authorization header redacted",
    [WEB_ACL, LOGGING],
)
def waf_logging(stack: Stack) -> list[tuple[str, str]]:
    found = []
    for acl in stack.of(WEB_ACL):
        configs = stack.joined_to(acl, "resourceArn", LOGGING)
        if not configs:
            found.append((acl.urn, f"{label(acl)} has no WebAclLoggingConfiguration"))
        for config in configs:
            fields = config.get("redactedFields")
            if fields is UNKNOWN:
                continue
            redacted = {str(get(f, "singleHeader.name", "")).lower() for f in items(fields)}
            missing = [h for h in MUST_REDACT if h not in redacted]
            if missing:
                found.append((config.urn, f"{label(config)} must redact the {', '.join(missing)} header (credentials)"))
    return found


def _visible(config) -> bool | None:
    if config is UNKNOWN or get(config, "cloudwatchMetricsEnabled") is UNKNOWN:
        return None
    return is_true(get(config, "cloudwatchMetricsEnabled"))


@stack_rule(
    "waf-rules-with-metrics",
    ["FSBP WAF.10", "FSBP WAF.12"],
    "Each web ACL has rules, and it and every rule publish CloudWatch metrics",
    [WEB_ACL],
)
def waf_rules(stack: Stack) -> list[tuple[str, str]]:
    found = []
    for acl in stack.of(WEB_ACL):
        rules = acl.get("rules")
        if rules is UNKNOWN:
            continue
        if not items(rules):
            found.append((acl.urn, f"{label(acl)} has no rules"))
        if _visible(acl.get("visibilityConfig")) is False:
            found.append((acl.urn, f"{label(acl)}: visibilityConfig.cloudwatchMetricsEnabled must be true"))
        for rule in items(rules):
            if _visible(get(rule, "visibilityConfig")) is False:
                found.append((acl.urn, f"{label(acl)}: rule {get(rule, 'name')!r} must set cloudwatchMetricsEnabled"))
    return found


def _blocks_log4j(rule) -> bool | None:
    group = get(rule, "statement.managedRuleGroupStatement")
    if group is UNKNOWN:
        return None
    if get(group, "name") != KNOWN_BAD_INPUTS:
        return False
    if get(rule, "overrideAction.count") is not None:
        return False  # the whole group only counts
    overrides = get(group, "ruleActionOverrides")
    if overrides is UNKNOWN:
        return None
    weakened = [o for o in items(overrides) if str(get(o, "name", "")).startswith("Log4JRCE")
                and get(o, "actionToUse.block") is None]  # fmt: skip
    return not weakened


@stack_rule(
    "waf-log4j-protection",
    ["CKV_AWS_192"],
    "Each web ACL blocks Log4j message lookups (AWS known-bad-inputs rule group, Log4JRCE rules not overridden)",
    [WEB_ACL],
)
def waf_log4j(stack: Stack) -> list[tuple[str, str]]:
    found = []
    for acl in stack.of(WEB_ACL):
        rules = acl.get("rules")
        if rules is UNKNOWN:
            continue
        verdicts = [_blocks_log4j(rule) for rule in items(rules)]
        if None not in verdicts and True not in verdicts:
            found.append((acl.urn, f"{label(acl)} has no {KNOWN_BAD_INPUTS} rule that blocks its Log4JRCE rules"))
    return found
