"""The load balancer's WAFv2 web ACL: a per-IP rate limit, AWS's known-bad-inputs and common rule
groups sized for MLflow's traffic, and its verdicts logged to CloudWatch (docs/aws.md, WAF).

What MLflow sends that a stock common rule set would block:
- bodies over 8 KB (SizeRestrictions_BODY): `log_batch` JSON up to ~1 MB, traces, and every artifact
  upload, a PUT of the file itself, of any size. Counted, not blocked; MLflow validates its own inputs.
- the artifact service (`/api/2.0/mlflow-artifacts/...`, and the UI's `/ajax-api/` twin): the URI
  path is the artifact's own path (`.../train.log` trips RestrictedExtensions_URIPATH) and the body
  is the file's bytes (an HTML plot trips CrossSiteScripting_BODY). The common rule set does not
  judge these requests (a scope-down); the known-bad-inputs group and the rate limit still do.
- OTLP trace exports (`/v1/traces`): protobuf or JSON batches of spans whose attributes are an
  application's prompts and answers, any text (HTML, `../`, URLs, SQL): the body rules
  (CrossSiteScripting_BODY, GenericLFI_BODY, GenericRFI_BODY, EC2MetaDataSSRF_BODY) would turn a
  trace into a 403 and the exporter drops the batch. Outside the common rule set like the artifact
  service; the known-bad-inputs group and the rate limit still judge it.
- artifact paths in query strings (`/get-artifact?path=train.log`, `artifacts/list?path=...`):
  RestrictedExtensions_QUERYARGUMENTS counted. MLflow serves no file of its own by path.
- with sign-in at the ALB (oidc, cognito): its session cookie (AWSELBAuthSessionCookie-0, -1...)
  holds the identity provider's claims and may reach 16 KB, over SizeRestrictions_Cookie_HEADER's
  10 KB, so that rule is counted too. The ALB, not MLflow, checks that cookie.
WAF reads at most the first 8 KB of an ALB request's body (fixed for ALB), so a multi-GB upload is
inspected at its start and streamed on, never buffered.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.aws.lib.providers import AwsContext
from components.config.aws import AwsWafSettings
from components.specs.otlp import TRACES_PATH

w = aws.wafv2
COMMON_RULE_SET = "AWSManagedRulesCommonRuleSet"
KNOWN_BAD_INPUTS = "AWSManagedRulesKnownBadInputsRuleSet"
# Rules of the common rule set that MLflow's legitimate traffic matches (module docstring).
COUNTED_COMMON_RULES = ("SizeRestrictions_BODY", "RestrictedExtensions_QUERYARGUMENTS")
# ... and the one the ALB's own sign-in cookie matches.
COUNTED_WITH_SIGN_IN = ("SizeRestrictions_Cookie_HEADER",)
# What the common rule set does not judge (module docstring), matched on the raw path: the artifact
# service's routes (MLflow's mlflow_artifacts.proto, REST and ajax prefixes), whose URI path is an
# artifact's path and a PUT's body the artifact, and OTLP trace exports (that path exactly).
OUTSIDE_COMMON_RULES_PATH = rf"^(/(api|ajax-api)/2\.0/mlflow-artifacts/|{re.escape(TRACES_PATH)}$)"
# The header names AWS WAF must never log: basic-auth credentials, the ALB sign-in session cookie.
# Lower case, as the API returns them (a mixed-case name would show a diff on every preview).
REDACTED_HEADERS = ("authorization", "cookie")
# The name prefix AWS requires of a log group that receives WAF logs.
WAF_LOG_GROUP_PREFIX = "aws-waf-logs-"


def waf_log_group_prefix(stack: str) -> str:
    """What the WAF log group's name starts with (the logs key's policy names it)."""
    return f"{WAF_LOG_GROUP_PREFIX}mlflow-{stack}-"


# Every WAF verdict but a plain allow is logged; the ALB access logs already list every request.
LOGGED_ACTIONS = ("BLOCK", "COUNT", "EXCLUDED_AS_COUNT")
# The window the rate limit counts over: AWS's default, set so the read-back never differs.
RATE_WINDOW_SECONDS = 300


@dataclass(frozen=True)
class WebFirewallArgs:
    settings: AwsWafSettings
    ctx: AwsContext
    # The stack's KMS key (its policy lets CloudWatch Logs use it for this account's log groups).
    kms_key_arn: pulumi.Input[str]
    log_retention_days: int
    # Sign-in at the load balancer (oidc, cognito): its session cookie may pass 10 KB.
    sign_in_at_load_balancer: bool = False


def visibility(metric: str) -> w.WebAclVisibilityConfigArgs:
    return w.WebAclVisibilityConfigArgs(
        cloudwatch_metrics_enabled=True, sampled_requests_enabled=True, metric_name=metric
    )


def rule_visibility(metric: str) -> w.WebAclRuleVisibilityConfigArgs:
    return w.WebAclRuleVisibilityConfigArgs(
        cloudwatch_metrics_enabled=True, sampled_requests_enabled=True, metric_name=metric
    )


def _not_exempt_path() -> w.WebAclRuleStatementManagedRuleGroupStatementScopeDownStatementArgs:
    s = w.WebAclRuleStatementManagedRuleGroupStatementScopeDownStatementArgs
    return s(
        not_statement=w.WebAclRuleStatementManagedRuleGroupStatementScopeDownStatementNotStatementArgs(
            statement=s(
                regex_match_statement=w.WebAclRuleStatementManagedRuleGroupStatementScopeDownStatementRegexMatchStatementArgs(
                    regex_string=OUTSIDE_COMMON_RULES_PATH,
                    field_to_match=w.WebAclRuleStatementManagedRuleGroupStatementScopeDownStatementRegexMatchStatementFieldToMatchArgs(
                        uri_path=w.WebAclRuleStatementManagedRuleGroupStatementScopeDownStatementRegexMatchStatementFieldToMatchUriPathArgs()
                    ),
                    text_transformations=[
                        w.WebAclRuleStatementManagedRuleGroupStatementScopeDownStatementRegexMatchStatementTextTransformationArgs(
                            priority=0, type="NONE"
                        )
                    ],
                )
            )
        )
    )  # fmt: skip


def _counted(rule: str) -> w.WebAclRuleStatementManagedRuleGroupStatementRuleActionOverrideArgs:
    return w.WebAclRuleStatementManagedRuleGroupStatementRuleActionOverrideArgs(
        name=rule,
        action_to_use=w.WebAclRuleStatementManagedRuleGroupStatementRuleActionOverrideActionToUseArgs(
            count=w.WebAclRuleStatementManagedRuleGroupStatementRuleActionOverrideActionToUseCountArgs()
        ),
    )


def web_acl_rules(
    settings: AwsWafSettings, stack: str, sign_in_at_load_balancer: bool = False
) -> list[w.WebAclRuleArgs]:
    """In priority order: the cheapest verdict first (a flood is blocked before any inspection)."""
    rate = w.WebAclRuleArgs(
        name="rate-limit-per-ip",
        priority=0,
        action=w.WebAclRuleActionArgs(block=w.WebAclRuleActionBlockArgs()),
        statement=w.WebAclRuleStatementArgs(
            rate_based_statement=w.WebAclRuleStatementRateBasedStatementArgs(
                limit=settings.rate_limit_per_5_minutes,
                aggregate_key_type="IP",
                evaluation_window_sec=RATE_WINDOW_SECONDS,
            )
        ),
        visibility_config=rule_visibility(f"mlflow-{stack}-rate-limit-per-ip"),
    )
    bad_inputs = w.WebAclRuleArgs(
        name="aws-known-bad-inputs",
        priority=1,
        override_action=w.WebAclRuleOverrideActionArgs(none=w.WebAclRuleOverrideActionNoneArgs()),
        statement=w.WebAclRuleStatementArgs(
            managed_rule_group_statement=w.WebAclRuleStatementManagedRuleGroupStatementArgs(
                vendor_name="AWS", name=KNOWN_BAD_INPUTS
            )
        ),
        visibility_config=rule_visibility(f"mlflow-{stack}-known-bad-inputs"),
    )
    counted = COUNTED_COMMON_RULES + (COUNTED_WITH_SIGN_IN if sign_in_at_load_balancer else ())
    common = w.WebAclRuleArgs(
        name="aws-common-rule-set",
        priority=2,
        override_action=w.WebAclRuleOverrideActionArgs(none=w.WebAclRuleOverrideActionNoneArgs()),
        statement=w.WebAclRuleStatementArgs(
            managed_rule_group_statement=w.WebAclRuleStatementManagedRuleGroupStatementArgs(
                vendor_name="AWS",
                name=COMMON_RULE_SET,
                rule_action_overrides=[_counted(rule) for rule in counted],
                scope_down_statement=_not_exempt_path(),
            )
        ),
        visibility_config=rule_visibility(f"mlflow-{stack}-common-rule-set"),
    )
    return [rate, bad_inputs, common]


class WebFirewall(pulumi.ComponentResource):
    web_acl_arn: pulumi.Output[str]

    def __init__(self, name: str, args: WebFirewallArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlflow-platform:aws:WebFirewall", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        stack = args.ctx.stack
        acl = w.WebAcl(
            name,
            w.WebAclArgs(
                scope="REGIONAL",
                description=f"mlflow-platform {stack}: the load balancer",
                default_action=w.WebAclDefaultActionArgs(allow=w.WebAclDefaultActionAllowArgs()),
                rules=web_acl_rules(args.settings, stack, args.sign_in_at_load_balancer),
                visibility_config=visibility(f"mlflow-{stack}-web-acl"),
            ),
            opts=child,
        )
        log_group = aws.cloudwatch.LogGroup(
            f"{name}-logs",
            aws.cloudwatch.LogGroupArgs(
                # AWS refuses any other name as a WAF log destination; the unique part AWS appends
                # lets a group left by an earlier stack of the same name stay where it is.
                name_prefix=waf_log_group_prefix(stack),
                retention_in_days=args.log_retention_days,
                kms_key_id=args.kms_key_arn,
            ),
            opts=child,
        )
        # WAF adds the group to a CloudWatch Logs resource policy of its own on first delivery
        # (the deploy role's logs:* allows it); no policy of ours to keep in step.
        w.WebAclLoggingConfiguration(
            name,
            w.WebAclLoggingConfigurationArgs(
                resource_arn=acl.arn,
                log_destination_configs=[log_group.arn],
                redacted_fields=[
                    w.WebAclLoggingConfigurationRedactedFieldArgs(
                        single_header=w.WebAclLoggingConfigurationRedactedFieldSingleHeaderArgs(name=header)
                    )
                    for header in REDACTED_HEADERS
                ],
                logging_filter=w.WebAclLoggingConfigurationLoggingFilterArgs(
                    default_behavior="DROP",
                    filters=[
                        w.WebAclLoggingConfigurationLoggingFilterFilterArgs(
                            behavior="KEEP",
                            requirement="MEETS_ANY",
                            conditions=[
                                w.WebAclLoggingConfigurationLoggingFilterFilterConditionArgs(
                                    action_condition=w.WebAclLoggingConfigurationLoggingFilterFilterConditionActionConditionArgs(
                                        action=action
                                    )
                                )
                                for action in LOGGED_ACTIONS
                            ],
                        )
                    ],
                ),
            ),
            opts=child,
        )  # fmt: skip
        self.web_acl_arn = acl.arn
        self.log_group_name = log_group.name
        self.register_outputs({"webAclArn": acl.arn, "logGroup": log_group.name})
