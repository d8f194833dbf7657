"""Prod monitoring (components/aws/monitoring.py): the dashboard, the alarms, their SNS topic.

Facts from the AWS guides, asserted on what the program asks for:
- A DashboardBody is JSON with `widgets`; a `metric` widget's `properties.metrics` rows are
  [namespace, metric name, dimension name, value, ..., {options}], with `region` and `period`
  (CloudWatch API reference, "Dashboard body structure and syntax").
- A percentile is an `ExtendedStatistic` (p99), never a `Statistic`; an alarm takes either a
  single metric or `Metrics` (metric math), not both (PutMetricAlarm API reference).
- CloudWatch publishes to a KMS-encrypted topic only if the key lets `cloudwatch.amazonaws.com`
  call kms:Decrypt and kms:GenerateDataKey*; it passes aws:SourceAccount/aws:SourceArn
  (SNS developer guide, "compatibility with AWS services").
- ALB listener rules run before the default actions, lowest priority first (ELB guide, listener rules).
"""

from __future__ import annotations

import json
from fnmatch import fnmatch

import pytest

from components.aws.lib import metrics
from components.aws.monitoring import PANELS
from tests.mocks.prod_helpers import (
    ACCOUNT,
    REGION,
    aws_outputs,
    policy,
    prod_section,
    prod_settings,
    run_prod,
    statements,
)
from tests.mocks.test_prod_kms import key_named

ALARM = "aws:cloudwatch/metricAlarm:MetricAlarm"
TOPIC = "aws:sns/topic:Topic"
RULE = "aws:lb/listenerRule:ListenerRule"


def arn_of(resource) -> str:
    return aws_outputs(resource.typ, resource.name, resource.plain)["arn"]


KNOWN = {(metric.namespace, metric.name): metric for metric in metrics.ALL}


def test_the_dashboard_body_is_cloudwatch_json_naming_only_metrics_of_the_table(prod_run):
    dashboard = prod_run.one("aws:cloudwatch/dashboard:Dashboard")
    body = json.loads(dashboard.plain["dashboardBody"])
    assert dashboard.plain["dashboardName"] == "mlflow-prod"
    widgets = body["widgets"]
    assert [w["properties"]["title"] for w in widgets] == [title for title, _ in PANELS]
    named = set()
    for widget in widgets:
        assert widget["type"] == "metric" and widget["width"] == 12 and widget["height"] == 6
        properties = widget["properties"]
        assert properties["region"] == REGION and properties["period"] == 300
        for row in properties["metrics"]:
            namespace, name, *pairs, options = row
            metric = KNOWN[(namespace, name)]
            # Dimension names as published, each with a value the program resolved (no "None").
            assert tuple(pairs[0::2]) == metric.dimensions and all(isinstance(v, str) and v for v in pairs[1::2])
            assert options["stat"] in ("Sum", "Average", "Minimum", "Maximum", "p50", "p95", "p99")
            named.add(metric)
    assert named == set(metrics.ALL)
    load_balancer = prod_run.one("aws:lb/loadBalancer:LoadBalancer")
    requests = widgets[0]["properties"]["metrics"][0]
    assert requests[2:4] == [metrics.LOAD_BALANCER, f"app/{load_balancer.name}/50dc6c495c0c9188"]
    (connections,) = [w for w in widgets if w["properties"]["title"] == "RDS connections"]
    limit = prod_settings().database_max_connections()
    assert connections["properties"]["annotations"]["horizontal"][0]["value"] == limit
    # The artifact bucket's size: this stack's bucket, its Standard storage, at S3's daily period
    # (S3 publishes storage metrics once a day; at the widget's 5 minutes the panel would be empty).
    (bucket_size,) = [w for w in widgets if metrics.BUCKET_SIZE.name in json.dumps(w["properties"]["metrics"])]
    (row,) = bucket_size["properties"]["metrics"]
    bucket = prod_run.exactly("aws:s3/bucket:Bucket", "mlflow-prod-artifacts")
    # The name the engine gives the bucket (the mocks' rule: tests/mocks/aws_fixtures.py).
    assert row[:6] == [
        metrics.S3,
        "BucketSizeBytes",
        metrics.BUCKET,
        f"{bucket.name}-0a1b2c3",
        metrics.STORAGE_TYPE,
        "StandardStorage",
    ]
    assert row[6]["period"] == 86400
    # Every other row keeps the widget's period.
    others = [r for w in widgets for r in w["properties"]["metrics"] if r[0] != metrics.S3]
    assert all("period" not in r[-1] for r in others)


def test_every_alarm_has_a_threshold_a_deliberate_missing_data_policy_and_notifies_the_topic(prod_run):
    topic = prod_run.one(TOPIC)
    alarms = {a.plain["name"]: a.plain for a in prod_run.of_type(ALARM)}
    expected = {"error-rate", "target-5xx", "p99-latency", "elb-4xx", "unhealthy-hosts", "running-tasks", "cpu",
                "memory", "db-cpu", "db-free-storage", "db-freeable-memory", "db-connections"}  # fmt: skip
    assert set(alarms) == {f"mlflow-prod-{key}" for key in expected}
    for alarm in alarms.values():
        assert isinstance(alarm["threshold"], int | float)
        assert alarm["treatMissingData"] in ("notBreaching", "breaching")
        assert alarm["alarmActions"] == alarm["okActions"] == [arn_of(topic)]
        if "metricQueries" in alarm:
            assert "metricName" not in alarm and sum(q.get("returnData", False) for q in alarm["metricQueries"]) == 1
            for query in alarm["metricQueries"]:
                if "metric" in query:
                    assert (query["metric"]["namespace"], query["metric"]["metricName"]) in KNOWN
        else:
            metric = KNOWN[(alarm["namespace"], alarm["metricName"])]
            assert set(alarm["dimensions"]) == set(metric.dimensions)
            # A percentile only as an extended statistic.
            assert ("statistic" in alarm) != ("extendedStatistic" in alarm)
    assert alarms["mlflow-prod-p99-latency"]["extendedStatistic"] == "p99"
    # Nothing reports when nothing runs: a silent service is an alarm, not "OK".
    assert alarms["mlflow-prod-running-tasks"]["treatMissingData"] == "breaching"


def test_thresholds_come_from_config_and_the_connections_one_from_max_connections():
    run = run_prod(monitoring={"p99LatencySeconds": 2.5, "databaseConnectionsPercent": 50, "elbClientErrors": 42},
                   database={**prod_section("database"), "instanceClass": "db.r7g.large"})  # fmt: skip
    alarms = {a.plain["name"]: a.plain for a in run.of_type(ALARM)}
    assert alarms["mlflow-prod-p99-latency"]["threshold"] == 2.5
    assert alarms["mlflow-prod-elb-4xx"]["threshold"] == 42
    # db.r7g.large: 16 GiB; with the proxy, RDS's default LEAST(memory / 9531392, 5000) holds.
    assert alarms["mlflow-prod-db-connections"]["threshold"] == min(16 * 1024**3 // 9531392, 5000) // 2


def test_the_topic_is_encrypted_with_a_key_cloudwatch_may_use_for_this_stacks_alarms_only(prod_run):
    topic = prod_run.one(TOPIC)
    key = key_named(prod_run, "alarms")
    assert topic.plain["kmsMasterKeyId"] == arn_of(key)
    grant = statements(policy(key), "CloudWatchAlarmsOfThisStack")
    assert grant["Principal"] == {"Service": "cloudwatch.amazonaws.com"}
    assert set(grant["Action"]) == {"kms:Decrypt", "kms:GenerateDataKey*"}
    assert grant["Condition"]["StringEquals"] == {"aws:SourceAccount": ACCOUNT}
    pattern = grant["Condition"]["ArnLike"]["aws:SourceArn"]
    for alarm in prod_run.of_type(ALARM):
        assert fnmatch(f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:{alarm.plain['name']}", pattern)
    assert not fnmatch(f"arn:aws:cloudwatch:{REGION}:{ACCOUNT}:alarm:someone-else", pattern)
    publish = statements(policy(prod_run.one("aws:sns/topicPolicy:TopicPolicy")), "CloudWatchAlarmsOfThisStack")
    assert publish["Action"] == "sns:Publish" and publish["Condition"]["ArnLike"]["aws:SourceArn"] == pattern


def test_an_alarm_email_subscribes_and_a_bad_address_is_refused(prod_run):
    assert prod_run.of_type("aws:sns/topicSubscription:TopicSubscription") == []
    run = run_prod(monitoring={"alarmEmail": "ops@example.com"})
    (subscription,) = run.of_type("aws:sns/topicSubscription:TopicSubscription")
    assert subscription.plain["protocol"] == "email" and subscription.plain["endpoint"] == "ops@example.com"
    assert subscription.plain["topic"] == arn_of(run.one(TOPIC))
    refused = run_prod(monitoring={"alarmEmail": "ops-at-example.com"}, raise_errors=False)
    assert refused.error is not None and "alarmEmail" in str(refused.error)


def test_the_stack_exports_the_alarm_topic(prod_run):
    assert prod_run.outputs["alarmTopicArn"][0] == arn_of(prod_run.one(TOPIC))


@pytest.mark.parametrize("auth", ["basic-auth", "oidc"])
def test_the_alb_never_publishes_the_servers_metrics(auth):
    from tests.mocks.prod_helpers import AUTH_IS_SECRET, OIDC

    run = run_prod(AUTH_IS_SECRET, auth={"mode": auth, "oidc": OIDC} if auth == "oidc" else {"mode": auth})
    rule = run.one(RULE, "no-metrics")
    # Rules run by priority: the 404 comes before any rule that signs in or forwards.
    assert all(rule.plain["priority"] < other.plain["priority"] for other in run.of_type(RULE) if other is not rule)
    https = next(listener for listener in run.of_type("aws:lb/listener:Listener") if listener.plain["port"] == 443)
    assert rule.plain["listenerArn"] == arn_of(https) and rule.plain["priority"] == 1
    (condition,) = rule.plain["conditions"]
    assert condition["pathPattern"]["values"] == ["/metrics", "/metrics/*"]
    # Only a fixed 404: no sign-in, no forward to the servers.
    (action,) = rule.plain["actions"]
    assert action["type"] == "fixed-response" and action["fixedResponse"]["statusCode"] == "404"
