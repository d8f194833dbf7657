"""Prod monitoring: one CloudWatch dashboard and the alarms of docs/aws.md ("Monitoring"), all
read from the metric table (lib/metrics.py); every alarm notifies one SNS topic, encrypted with a
key of its own, on alarm and on recovery."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pulumi
import pulumi_aws as aws

from components.aws.lib import kms
from components.aws.lib import metrics as m
from components.aws.lib.policies import document
from components.aws.lib.providers import AwsContext
from components.config import AwsSettings

PERIOD_SECONDS = 300
GIB = 1024**3
MIB = 1024**2


def alarm_name_prefix(stack: str) -> str:
    """Every alarm's name starts with it: the key and the topic let CloudWatch publish those only."""
    return f"mlflow-{stack}-"


@dataclass(frozen=True)
class MonitoringArgs:
    settings: AwsSettings
    ctx: AwsContext
    # Dimension values of the metric table's dimensions (metrics.LOAD_BALANCER, ...).
    load_balancer: pulumi.Input[str]
    target_group: pulumi.Input[str]
    cluster: pulumi.Input[str]
    service: pulumi.Input[str]
    db_instance: pulumi.Input[str]
    bucket: pulumi.Input[str]
    """The artifact bucket's name."""


@dataclass(frozen=True)
class Alarm:
    """One condition: `metric` compared with `threshold` over `periods` periods of 5 minutes."""

    key: str
    description: str
    metric: m.Metric
    statistic: str
    comparison: str
    threshold: float
    periods: int = 1
    # Missing data is "fine" where no data means no traffic; "breaching" where it means nothing runs.
    missing: str = "notBreaching"


def alarms(settings: AwsSettings) -> list[Alarm]:
    """The alarms of the stack, thresholds from `monitoring.*` (the connection threshold derived
    from the instance's max_connections, none when the instance class is not known)."""
    t = settings.monitoring
    found = [
        Alarm("target-5xx", "servers answered 5xx", m.TARGET_5XX, "Sum", "GreaterThanThreshold", t.server_errors),
        Alarm("p99-latency", "p99 response time of the servers", m.TARGET_RESPONSE_TIME, "p99",
              "GreaterThanThreshold", t.p99_latency_seconds, periods=3),
        Alarm("elb-4xx", "4xx spike at the ALB (413 uploads too large, WAF blocks)", m.ELB_4XX, "Sum",
              "GreaterThanThreshold", t.elb_client_errors),
        Alarm("unhealthy-hosts", "a target fails its health check", m.UNHEALTHY_HOSTS, "Maximum",
              "GreaterThanThreshold", 0, periods=2),
        Alarm("cpu", "ECS service CPU", m.SERVICE_CPU, "Average", "GreaterThanThreshold", t.cpu_percent, periods=3,
              missing="breaching"),
        Alarm("memory", "ECS service memory", m.SERVICE_MEMORY, "Average", "GreaterThanThreshold", t.memory_percent,
              periods=3, missing="breaching"),
        Alarm("db-cpu", "RDS CPU", m.DB_CPU, "Average", "GreaterThanThreshold", t.database_cpu_percent, periods=3,
              missing="breaching"),
        Alarm("db-free-storage", "RDS free storage", m.DB_FREE_STORAGE, "Minimum", "LessThanThreshold",
              t.database_free_storage_gb * GIB, missing="breaching"),
        Alarm("db-freeable-memory", "RDS freeable memory", m.DB_FREEABLE_MEMORY, "Minimum", "LessThanThreshold",
              t.database_freeable_memory_mb * MIB, periods=3, missing="breaching"),
    ]  # fmt: skip
    connections = settings.connections_alarm_threshold()
    if connections is not None:
        found.append(Alarm("db-connections", "RDS connections near max_connections", m.DB_CONNECTIONS, "Maximum",
                           "GreaterThanThreshold", connections, periods=2))  # fmt: skip
    return found


class Monitoring(pulumi.ComponentResource):
    """Exposes `topic_arn` (the stack output `alarmTopicArn`) and `dashboard_name`."""

    topic_arn: pulumi.Output[str]

    def __init__(self, name: str, args: MonitoringArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlflow-platform:aws:Monitoring", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        ctx, settings = args.ctx, args.settings
        prefix = alarm_name_prefix(ctx.stack)
        key = kms.key(
            f"{name}-alarms", ctx, "alarms", "the alarm topic", child, kms.cloudwatch_alarms_may_use(ctx, prefix)
        )
        topic = aws.sns.Topic(name, aws.sns.TopicArgs(kms_master_key_id=key.arn), opts=child)
        aws.sns.TopicPolicy(
            name,
            aws.sns.TopicPolicyArgs(
                arn=topic.arn,
                policy=document(
                    {
                        "Sid": "CloudWatchAlarmsOfThisStack",
                        "Effect": "Allow",
                        "Principal": {"Service": kms.CLOUDWATCH},
                        "Action": "sns:Publish",
                        "Resource": topic.arn,
                        "Condition": {
                            "StringEquals": {"aws:SourceAccount": ctx.account_id},
                            "ArnLike": {"aws:SourceArn": ctx.arn("cloudwatch", f"alarm:{prefix}*")},
                        },
                    }
                ),
            ),
            opts=child,
        )
        if settings.monitoring.alarm_email is not None:
            aws.sns.TopicSubscription(
                f"{name}-email",
                aws.sns.TopicSubscriptionArgs(
                    topic=topic.arn, protocol="email", endpoint=settings.monitoring.alarm_email
                ),
                opts=child,
            )
        dimensions = self._dimension_values(args)
        actions = [topic.arn]
        # The error rate is a ratio: metric math over the ALB's and the targets' 5xx and the requests.
        rate_query = [
            aws.cloudwatch.MetricAlarmMetricQueryArgs(
                id=query_id, return_data=False,
                metric=aws.cloudwatch.MetricAlarmMetricQueryMetricArgs(
                    namespace=metric.namespace, metric_name=metric.name, period=PERIOD_SECONDS, stat="Sum",
                    dimensions=self._dimensions(metric, dimensions)),
            )
            for query_id, metric in (("elb", m.ELB_5XX), ("target", m.TARGET_5XX), ("requests", m.REQUEST_COUNT))
        ]  # fmt: skip
        aws.cloudwatch.MetricAlarm(
            f"{name}-error-rate",
            aws.cloudwatch.MetricAlarmArgs(
                name=f"{prefix}error-rate",
                alarm_description="ALB and server 5xx, % of requests",
                comparison_operator="GreaterThanThreshold",
                evaluation_periods=2,
                threshold=settings.monitoring.error_rate_percent,
                metric_queries=[*rate_query, aws.cloudwatch.MetricAlarmMetricQueryArgs(
                    id="rate", label="5xx %", return_data=True,
                    expression="100 * (FILL(elb, 0) + FILL(target, 0)) / requests")],
                treat_missing_data="notBreaching",
                alarm_actions=actions,
                ok_actions=actions,
            ),
            opts=child,
        )  # fmt: skip
        for alarm in alarms(settings):
            percentile = alarm.statistic.startswith("p")
            aws.cloudwatch.MetricAlarm(
                f"{name}-{alarm.key}",
                aws.cloudwatch.MetricAlarmArgs(
                    name=f"{prefix}{alarm.key}",
                    alarm_description=alarm.description,
                    namespace=alarm.metric.namespace,
                    metric_name=alarm.metric.name,
                    dimensions=self._dimensions(alarm.metric, dimensions),
                    statistic=None if percentile else alarm.statistic,
                    extended_statistic=alarm.statistic if percentile else None,
                    period=PERIOD_SECONDS,
                    evaluation_periods=alarm.periods,
                    comparison_operator=alarm.comparison,
                    threshold=alarm.threshold,
                    treat_missing_data=alarm.missing,
                    alarm_actions=actions,
                    ok_actions=actions,
                ),
                opts=child,
            )
        # Running tasks below desired: Container Insights publishes both (enabled on the cluster).
        aws.cloudwatch.MetricAlarm(
            f"{name}-running-tasks",
            aws.cloudwatch.MetricAlarmArgs(
                name=f"{prefix}running-tasks",
                alarm_description="fewer tasks running than desired",
                comparison_operator="LessThanThreshold",
                evaluation_periods=3,
                threshold=0,
                metric_queries=[
                    *[aws.cloudwatch.MetricAlarmMetricQueryArgs(
                        id=query_id, return_data=False,
                        metric=aws.cloudwatch.MetricAlarmMetricQueryMetricArgs(
                            namespace=metric.namespace, metric_name=metric.name, period=PERIOD_SECONDS,
                            stat="Average", dimensions=self._dimensions(metric, dimensions)))
                      for query_id, metric in (("running", m.RUNNING_TASKS), ("desired", m.DESIRED_TASKS))],
                    aws.cloudwatch.MetricAlarmMetricQueryArgs(
                        id="missing", label="running - desired", return_data=True, expression="running - desired"),
                ],
                # No data from Container Insights: nothing runs to report it.
                treat_missing_data="breaching",
                alarm_actions=actions,
                ok_actions=actions,
            ),
            opts=child,
        )  # fmt: skip
        dashboard = aws.cloudwatch.Dashboard(
            name,
            aws.cloudwatch.DashboardArgs(
                dashboard_name=f"mlflow-{ctx.stack}",
                dashboard_body=pulumi.Output.all(**dimensions).apply(
                    lambda values: dashboard_body(ctx.region, values, settings.database_max_connections())
                ),
            ),
            opts=child,
        )
        self.topic_arn = topic.arn
        self.dashboard_name = dashboard.dashboard_name
        self.register_outputs({"topicArn": topic.arn, "dashboard": dashboard.dashboard_name})

    @staticmethod
    def _dimension_values(args: MonitoringArgs) -> dict[str, pulumi.Input[str]]:
        return {
            m.LOAD_BALANCER: args.load_balancer,
            m.TARGET_GROUP: args.target_group,
            m.CLUSTER: args.cluster,
            m.SERVICE: args.service,
            m.DB_INSTANCE: args.db_instance,
            m.BUCKET: args.bucket,
            m.STORAGE_TYPE: m.STANDARD_STORAGE,
        }

    @staticmethod
    def _dimensions(metric: m.Metric, values: dict[str, Any]) -> dict[str, Any]:
        return {dimension: values[dimension] for dimension in metric.dimensions}


# The dashboard's panels: title and [(metric, stat)].
PANELS: list[tuple[str, list[tuple[m.Metric, str]]]] = [
    ("Requests", [(m.REQUEST_COUNT, "Sum")]),
    ("Response time (s)", [(m.TARGET_RESPONSE_TIME, "p50"), (m.TARGET_RESPONSE_TIME, "p95"),
                           (m.TARGET_RESPONSE_TIME, "p99")]),
    ("5xx", [(m.ELB_5XX, "Sum"), (m.TARGET_5XX, "Sum")]),
    ("4xx (413s are ELB 4xx)", [(m.ELB_4XX, "Sum"), (m.TARGET_4XX, "Sum")]),
    ("Targets", [(m.HEALTHY_HOSTS, "Minimum"), (m.UNHEALTHY_HOSTS, "Maximum")]),
    ("Tasks running vs desired", [(m.RUNNING_TASKS, "Average"), (m.DESIRED_TASKS, "Average")]),
    ("ECS CPU / memory (%)", [(m.SERVICE_CPU, "Average"), (m.SERVICE_MEMORY, "Average")]),
    ("RDS CPU (%)", [(m.DB_CPU, "Average")]),
    ("RDS connections", [(m.DB_CONNECTIONS, "Maximum")]),
    ("RDS free storage (bytes)", [(m.DB_FREE_STORAGE, "Minimum")]),
    ("RDS freeable memory (bytes)", [(m.DB_FREEABLE_MEMORY, "Minimum")]),
    ("Uploads + downloads through the ALB (bytes)", [(m.PROCESSED_BYTES, "Sum")]),
    ("Artifact bucket size (bytes, daily)", [(m.BUCKET_SIZE, "Average")]),
]  # fmt: skip


def dashboard_body(region: str, values: dict[str, str], max_connections: int | None = None) -> str:
    """The DashboardBody JSON: one `metric` widget per panel, two per row (CloudWatch dashboard
    body structure: metrics arrays of namespace, name, dimension name/value pairs, options)."""
    widgets = []
    for index, (title, series) in enumerate(PANELS):
        rows = []
        for metric, stat in series:
            pairs = [part for dimension in metric.dimensions for part in (dimension, values[dimension])]
            options: dict[str, Any] = {"stat": stat, "label": f"{metric.name} {stat}"}
            if metric.namespace == m.S3:
                options["period"] = m.DAILY_SECONDS
            rows.append([metric.namespace, metric.name, *pairs, options])
        properties: dict[str, Any] = {"title": title, "region": region, "view": "timeSeries", "stacked": False,
                                      "period": PERIOD_SECONDS, "metrics": rows}  # fmt: skip
        if max_connections is not None and any(metric == m.DB_CONNECTIONS for metric, _ in series):
            properties["annotations"] = {"horizontal": [{"label": "max_connections", "value": max_connections}]}
        widgets.append({"type": "metric", "x": 12 * (index % 2), "y": 6 * (index // 2), "width": 12, "height": 6,
                        "properties": properties})  # fmt: skip
    return json.dumps({"widgets": widgets})
