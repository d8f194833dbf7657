"""The CloudWatch metrics the dashboard and the alarms read: one table of namespaces, metric
names and the dimensions each is published under (ALB, ECS Container Insights and RDS user
guides, "CloudWatch metrics"; S3's daily storage metrics, "Amazon S3 daily storage metrics for
buckets in CloudWatch")."""

from __future__ import annotations

from dataclasses import dataclass

ALB = "AWS/ApplicationELB"
CONTAINER_INSIGHTS = "ECS/ContainerInsights"
ECS = "AWS/ECS"
RDS = "AWS/RDS"
S3 = "AWS/S3"

# Dimension names, by what they name.
LOAD_BALANCER = "LoadBalancer"
TARGET_GROUP = "TargetGroup"
CLUSTER = "ClusterName"
SERVICE = "ServiceName"
DB_INSTANCE = "DBInstanceIdentifier"
BUCKET = "BucketName"
STORAGE_TYPE = "StorageType"
# The artifact bucket's objects are all S3 Standard (no lifecycle moves them): BucketSizeBytes is
# published per storage type, and this one holds every byte.
STANDARD_STORAGE = "StandardStorage"
# S3 publishes its storage metrics once a day: a shorter period draws nothing.
DAILY_SECONDS = 86400


@dataclass(frozen=True)
class Metric:
    namespace: str
    name: str
    dimensions: tuple[str, ...]


REQUEST_COUNT = Metric(ALB, "RequestCount", (LOAD_BALANCER,))
# Bytes in and out through the ALB (uploads and downloads together: the ALB does not split them).
PROCESSED_BYTES = Metric(ALB, "ProcessedBytes", (LOAD_BALANCER,))
BUCKET_SIZE = Metric(S3, "BucketSizeBytes", (BUCKET, STORAGE_TYPE))
TARGET_RESPONSE_TIME = Metric(ALB, "TargetResponseTime", (LOAD_BALANCER,))
ELB_5XX = Metric(ALB, "HTTPCode_ELB_5XX_Count", (LOAD_BALANCER,))
ELB_4XX = Metric(ALB, "HTTPCode_ELB_4XX_Count", (LOAD_BALANCER,))
TARGET_5XX = Metric(ALB, "HTTPCode_Target_5XX_Count", (LOAD_BALANCER,))
TARGET_4XX = Metric(ALB, "HTTPCode_Target_4XX_Count", (LOAD_BALANCER,))
HEALTHY_HOSTS = Metric(ALB, "HealthyHostCount", (TARGET_GROUP, LOAD_BALANCER))
UNHEALTHY_HOSTS = Metric(ALB, "UnHealthyHostCount", (TARGET_GROUP, LOAD_BALANCER))
RUNNING_TASKS = Metric(CONTAINER_INSIGHTS, "RunningTaskCount", (CLUSTER, SERVICE))
DESIRED_TASKS = Metric(CONTAINER_INSIGHTS, "DesiredTaskCount", (CLUSTER, SERVICE))
SERVICE_CPU = Metric(ECS, "CPUUtilization", (CLUSTER, SERVICE))
SERVICE_MEMORY = Metric(ECS, "MemoryUtilization", (CLUSTER, SERVICE))
DB_CPU = Metric(RDS, "CPUUtilization", (DB_INSTANCE,))
DB_CONNECTIONS = Metric(RDS, "DatabaseConnections", (DB_INSTANCE,))
DB_FREE_STORAGE = Metric(RDS, "FreeStorageSpace", (DB_INSTANCE,))
DB_FREEABLE_MEMORY = Metric(RDS, "FreeableMemory", (DB_INSTANCE,))

ALL = (
    REQUEST_COUNT, TARGET_RESPONSE_TIME, ELB_5XX, ELB_4XX, TARGET_5XX, TARGET_4XX, HEALTHY_HOSTS,
    UNHEALTHY_HOSTS, RUNNING_TASKS, DESIRED_TASKS, SERVICE_CPU, SERVICE_MEMORY, DB_CPU, DB_CONNECTIONS,
    DB_FREE_STORAGE, DB_FREEABLE_MEMORY, PROCESSED_BYTES, BUCKET_SIZE,
)  # fmt: skip
