"""CloudWatch alarms and the SNS topic they notify."""

from __future__ import annotations

from .base import UNKNOWN, Res, as_list, resource_rule

TOPIC = "aws:sns/topic:Topic"
ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"


@resource_rule("sns-topic-cmk", ["FSBP SNS.1"], "SNS topics are encrypted with a customer-managed KMS key", [TOPIC])
def topic_cmk(r: Res) -> list[str]:
    key = r.get("kmsMasterKeyId")
    if key is UNKNOWN:
        return []
    if not key:
        return ["kmsMasterKeyId must name a customer-managed key (unset: not encrypted)"]
    # alias/aws/sns: the AWS managed key, whose policy cannot let CloudWatch publish.
    return ["kmsMasterKeyId is the AWS managed key alias/aws/sns; use a customer-managed key"] if (
        isinstance(key, str) and key.endswith("alias/aws/sns")
    ) else []  # fmt: skip


@resource_rule(
    "cloudwatch-alarm-actions",
    ["FSBP CloudWatch.15"],
    "Every alarm notifies someone, on alarm and on recovery",
    [ALARM],
)
def alarm_actions(r: Res) -> list[str]:
    problems = []
    if r.get("actionsEnabled", True) is False:
        problems.append("actionsEnabled must be true")
    for field in ("alarmActions", "okActions"):
        actions = r.get(field)
        if actions is not UNKNOWN and not as_list(actions):
            problems.append(f"{field} must name at least one action")
    return problems
