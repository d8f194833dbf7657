"""Settings of the `aws` target: the production stack.

Defaults are the production answer (Multi-AZ, deletion protection, HTTPS only, auth on);
`semantic_problems()` refuses the combinations a security reviewer would reject.
"""

from __future__ import annotations

import re
from ipaddress import IPv4Network
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BeforeValidator, EmailStr, Field, SecretStr, model_validator

from components.config.access import AccessSettings
from components.config.base import BucketName, ConfigModel, DatabaseSettings, GcSettings, TrackingSettings
from components.sizes import server_memory_mib
from components.specs.connections import (
    ECS_DEPLOYMENT_SURGE,
    ConnectionBudget,
    engines_per_worker,
    instance_memory_gib,
    rds_default_max_connections,
)

AWS_REGION_PATTERN = r"^[a-z]{2}(-[a-z]+)+-\d$"
ACCOUNT_ID = Annotated[str, Field(pattern=r"^\d{12}$")]
ACM_CERTIFICATE_ARN = (
    r"^arn:aws[a-z-]*:acm:[a-z]{2}(-[a-z]+)+-\d:\d{12}:certificate/[0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}$"
)
KMS_KEY_ARN = r"^arn:aws[a-z-]*:kms:[a-z]{2}(-[a-z]+)+-\d:\d{12}:key/([0-9a-f]{8}(-[0-9a-f]{4}){3}-[0-9a-f]{12}|mrk-[0-9a-f]{32})$"
WAF_ACL_ARN = r"^arn:aws[a-z-]*:wafv2:[a-z]{2}(-[a-z]+)+-\d:\d{12}:regional/webacl/[\w-]+/[0-9a-f-]+$"
COGNITO_POOL_ARN = (
    r"^arn:aws[a-z-]*:cognito-idp:[a-z]{2}(-[a-z]+)+-\d:\d{12}:userpool/[a-z]{2}(-[a-z]+)+-\d_[0-9A-Za-z]+$"
)
HOSTED_ZONE_ID = r"^Z[0-9A-Z]{1,31}$"
IAM_ROLE_ARN = r"^arn:aws[a-z-]*:iam::\d{12}:role/[A-Za-z0-9+=,.@_/-]+$"
# The role CI deploys with (docs/aws.md; its policy: deploy/aws/deploy-role-policy.json).
DEPLOY_ROLE_NAME = "mlflow-platform-deploy"
HTTPS_URL = r"^https://[^\s/?#]+[^\s]*$"

# ALB policies that offer TLS 1.2 and 1.3 only, with forward-secret ciphers (no TLS 1.0/1.1).
MODERN_TLS_POLICIES = (
    "ELBSecurityPolicy-TLS13-1-2-Res-2021-06",
    "ELBSecurityPolicy-TLS13-1-2-2021-06",
    "ELBSecurityPolicy-TLS13-1-3-2021-06",
    "ELBSecurityPolicy-TLS13-1-2-Res-FIPS-2023-04",
    "ELBSecurityPolicy-TLS13-1-2-FIPS-2023-04",
    "ELBSecurityPolicy-TLS13-1-3-FIPS-2023-04",
)
TlsPolicy = Literal[MODERN_TLS_POLICIES]  # type: ignore[valid-type]

# IPv4 ranges no internet client can come from (IANA special-purpose registry: private, shared,
# loopback, link-local, documentation, benchmarking, multicast, reserved). Disjoint, so the public
# addresses of a range are its size minus its overlaps with these.
NON_PUBLIC_IPV4 = tuple(IPv4Network(n) for n in (
    "0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
    "192.0.0.0/24", "192.0.2.0/24", "192.168.0.0/16", "198.18.0.0/15", "198.51.100.0/24", "203.0.113.0/24",
    "224.0.0.0/4", "240.0.0.0/4",
))  # fmt: skip

# The shortest CloudWatch retention a prod stack may ask for (its default is a year).
MIN_PROD_LOG_RETENTION_DAYS = 90
# The only values CloudWatch Logs accepts for a retention period.
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922,
                      3288, 3653)  # fmt: skip

# Fargate's CPU units -> the memory sizes (MiB) it accepts with them.
FARGATE_SIZES = {
    256: (512, 1024, 2048),
    512: tuple(range(1024, 4096 + 1, 1024)),
    1024: tuple(range(2048, 8192 + 1, 1024)),
    2048: tuple(range(4096, 16384 + 1, 1024)),
    4096: tuple(range(8192, 30720 + 1, 1024)),
    8192: tuple(range(16384, 61440 + 1, 4096)),
    16384: tuple(range(32768, 122880 + 1, 8192)),
}


def _check_domain(value: str) -> str:
    value = value.lower().rstrip(".")
    label = r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?"
    if len(value) > 253 or not re.fullmatch(rf"({label}\.)+[a-z]{{2,63}}", value):
        raise ValueError(f"'{value}' is not a fully qualified domain name such as mlflow.example.com")
    return value


def _check_retention(value: int) -> int:
    allowed = [days for days in LOG_RETENTION_DAYS if days >= MIN_PROD_LOG_RETENTION_DAYS]
    if value not in allowed:
        raise ValueError(
            f"CloudWatch Logs keeps logs for one of {', '.join(map(str, LOG_RETENTION_DAYS))} days, and a prod "
            f"stack keeps them at least {MIN_PROD_LOG_RETENTION_DAYS}: one of {', '.join(map(str, allowed))} (got {value})"
        )
    return value


def _check_private_cidr(value: IPv4Network) -> IPv4Network:
    if not value.is_private:
        raise ValueError(f"{value} is not a private (RFC 1918) range")
    if not 16 <= value.prefixlen <= 22:
        raise ValueError(f"{value}: use a /16 to /22, so each subnet (1/16 of it) still fits a load balancer")
    return value


def public_addresses(network: IPv4Network) -> int:
    """How many addresses of `network` are public (outside NON_PUBLIC_IPV4).

    Counted against the explicit list above rather than asked of `IPv4Network.is_private` /
    `is_global`, whose answers for networks have changed between Python versions (an older
    definition looked only at the first and last address: 0.0.0.0/1 runs from 0/8 to 127/8).
    """
    covered = sum(min(network.num_addresses, block.num_addresses)
                  for block in NON_PUBLIC_IPV4 if network.overlaps(block))  # fmt: skip
    return network.num_addresses - covered


def _check_secret_text(value: Any) -> Any:
    # Our own message, without the value: pydantic's would quote a non-string input.
    if not isinstance(value, str) or not value:
        raise ValueError("must be a non-empty string (its value is not shown)")
    return value


# AWS WAF's floor for a rate-based rule's limit (developer guide, rate-based rule settings).
WAF_MIN_RATE_LIMIT = 10


DomainName = Annotated[str, AfterValidator(_check_domain)]
SecretText = Annotated[SecretStr, BeforeValidator(_check_secret_text)]
LogRetentionDays = Annotated[int, AfterValidator(_check_retention)]
SubnetId = Annotated[str, Field(pattern=r"^subnet-[0-9a-f]{8,17}$")]


def _region_of(arn: str | None) -> str | None:
    return arn.split(":")[3] if arn else None


class AwsNetworkSettings(ConfigModel):
    # A new VPC over `availabilityZones` AZs, unless an existing VPC and its subnets are given.
    vpc_cidr: Annotated[IPv4Network, AfterValidator(_check_private_cidr)] = IPv4Network("10.42.0.0/16")
    """private range, /16-/22; subnets are sixteenths of it"""
    availability_zones: int = Field(default=2, ge=2, le=3)
    """2 or 3"""
    # one-per-az: an AZ outage does not cut the others off from AWS APIs; single: ~$33/month cheaper.
    nat_gateways: Literal["one-per-az", "single"] = "one-per-az"
    """or `single` (cheaper, less resilient)"""
    # VPC flow logs (all traffic) to the access-log bucket.
    flow_logs: bool = True
    """VPC flow logs to the log bucket"""
    existing_vpc_id: str | None = Field(default=None, pattern=r"^vpc-[0-9a-f]{8,17}$")
    """use an existing VPC (with `existingPublicSubnetIds` and `existingPrivateSubnetIds`: ≥2 subnets each, in different AZs; the private ones need a NAT route and should have an S3 gateway endpoint)"""
    # Public subnets hold only the load balancer; private ones the tasks and the database.
    existing_public_subnet_ids: list[SubnetId] = Field(default_factory=list)
    """public subnets of `existingVpcId` (the load balancer only)"""
    existing_private_subnet_ids: list[SubnetId] = Field(default_factory=list)
    """private subnets of `existingVpcId` (tasks and the database)"""
    # Interface endpoints (ECR, Secrets Manager, CloudWatch Logs, KMS) in the created VPC, and task
    # egress limited to them and the S3 gateway endpoint: no task reaches the internet. ~$73/month.
    interface_endpoints: bool = True
    """interface endpoints (ECR api and dkr, Secrets Manager, CloudWatch Logs, KMS) in a created VPC, and task egress limited to them and the S3 gateway endpoint (no internet); ~$73/month. With an existing VPC, or `false`: tasks reach HTTPS anywhere through NAT"""


class AwsDatabaseSettings(DatabaseSettings):
    # A major version ("17") takes minor upgrades in the maintenance window; "17.6" pins one.
    engine_version: str = Field(default="17", pattern=r"^\d{2}(\.\d+)?$")
    """a major version takes minor upgrades in the maintenance window; `17.6` pins one"""
    instance_class: str = Field(default="db.t4g.medium", pattern=r"^db\.[a-z0-9]+\.[a-z0-9]+$")
    """RDS instance class"""
    allocated_storage_gb: int = Field(default=20, ge=20, le=65536)
    """initial storage (gp3)"""
    max_allocated_storage_gb: int = Field(default=100, ge=20, le=65536)
    """storage autoscaling ceiling"""
    multi_az: bool = True
    """a standby in a second AZ, automatic failover"""
    backup_retention_days: int = Field(default=7, ge=7, le=35)
    """7-35"""
    backup_window: str = Field(default="03:00-04:00", pattern=r"^([01]\d|2[0-3]):[0-5]\d-([01]\d|2[0-3]):[0-5]\d$")
    """daily backup window, UTC"""
    maintenance_window: str = Field(
        default="sun:04:30-sun:05:30",
        pattern=r"^(mon|tue|wed|thu|fri|sat|sun):([01]\d|2[0-3]):[0-5]\d-(mon|tue|wed|thu|fri|sat|sun):([01]\d|2[0-3]):[0-5]\d$",
    )
    """weekly maintenance window, UTC"""
    # Set false (and `pulumi up`) only to destroy the stack; a final snapshot is taken either way.
    deletion_protection: bool = True
    """set `false` only to destroy"""
    performance_insights: bool = True
    """7 days, free tier"""
    # Statements slower than this are logged (and exported to CloudWatch); -1 turns it off.
    log_min_duration_ms: int = Field(default=1000, ge=-1)
    """slow-statement logging; `-1` off"""
    # Present so that `true` gets a clear refusal rather than "unknown key".
    publicly_accessible: bool = False
    """`true` is refused"""
    proxy: bool = True
    """RDS Proxy in front of the instance: the servers' pools (up to thousands of connections in a rollout at the autoscaling maximum, bench/CONNECTIONS.md) are multiplexed onto at most 90 % of what the instance runs. `false`: the servers connect directly and `max_connections` is set to their worst case, which must fit the instance class"""

    @property
    def major_version(self) -> int:
        return int(self.engine_version.split(".")[0])


class AwsArtifactStoreSettings(ConfigModel):
    # None: a name is derived from the project and stack (bucket names are global).
    bucket: BucketName | None = None
    """a global bucket name; unset: derived from the project and stack"""
    # None: the program creates a customer-managed KMS key (with rotation) for the bucket.
    kms_key_arn: str | None = Field(default=None, pattern=KMS_KEY_ARN)
    """an existing key in the same region"""
    noncurrent_version_expiration_days: int = Field(default=90, ge=1, le=3650)
    """days an overwritten or deleted artifact version is kept before S3 expires it"""
    abort_incomplete_upload_days: int = Field(default=7, ge=1, le=365)
    """days before S3 aborts an unfinished multipart upload (and frees its parts)"""
    # Lets `pulumi destroy` delete a non-empty bucket: artifacts are lost. Keep false in prod.
    force_destroy: bool = False
    """lets destroy delete artifacts"""
    # Roles that may read and write objects besides the tracking server (backups, restores, a
    # destroy with forceDestroy). None: the deploy role of this account (DEPLOY_ROLE_NAME).
    operator_role_arns: list[Annotated[str, Field(pattern=IAM_ROLE_ARN)]] | None = None
    """roles that may read and write artifacts besides the tracking server (backups, restores, a destroy with `forceDestroy`); unset: the deploy role `mlflow-platform-deploy` of the account"""


class OidcSettings(ConfigModel):
    issuer: str = Field(pattern=HTTPS_URL)
    authorization_endpoint: str = Field(pattern=HTTPS_URL)
    token_endpoint: str = Field(pattern=HTTPS_URL)
    user_info_endpoint: str = Field(pattern=HTTPS_URL)
    client_id: str = Field(min_length=1, max_length=512)
    # Must be a Pulumi secret (`pulumi config set --secret --path mlflow-platform:auth.oidc.clientSecret`),
    # checked by components.config.loader.plaintext_secret_problems; it reaches the listener as a secret.
    client_secret: SecretText
    scope: str = "openid email"
    session_timeout_seconds: int = Field(default=28800, ge=60, le=604800)


class CognitoSettings(ConfigModel):
    user_pool_arn: str = Field(pattern=COGNITO_POOL_ARN)
    user_pool_client_id: str = Field(pattern=r"^[0-9a-z]{1,128}$")
    # The user pool's domain prefix (or custom domain) that hosts the sign-in page.
    user_pool_domain: str = Field(pattern=r"^[a-z0-9.-]{1,253}$")
    session_timeout_seconds: int = Field(default=28800, ge=60, le=604800)


class AuthSettings(AccessSettings):
    # basic-auth: MLflow's own users (UI and API clients); oidc/cognito: the ALB signs browsers in
    # (API clients cannot follow that redirect); none: only behind a restricted ingress range.
    mode: Literal["basic-auth", "oidc", "cognito", "none"] = "basic-auth"
    """`basic-auth`, `oidc`, `cognito`, `none` (refused on an internet-facing ALB whose `ingressCidrs` include any public address); `oidc`/`cognito` also open ALB egress tcp/443 to the internet (the identity provider)"""
    # basic-auth: the admin user created on first start; its password is generated.
    admin_username: str = Field(default="admin", pattern=r"^[A-Za-z0-9._-]{1,64}$")
    """basic-auth admin; its password is generated (`pulumi stack output password --show-secrets`)"""
    oidc: OidcSettings | None = None
    """`issuer`, `authorizationEndpoint`, `tokenEndpoint`, `userInfoEndpoint`, `clientId`, `clientSecret`, `scope`, `sessionTimeoutSeconds`. `clientSecret` must be a Pulumi secret, or the stack is refused: `pulumi config set -s prod --secret --path mlflow-platform:auth.oidc.clientSecret '<value>'`"""
    cognito: CognitoSettings | None = None
    """`userPoolArn`, `userPoolClientId`, `userPoolDomain`, `sessionTimeoutSeconds`"""


class AwsWafSettings(ConfigModel):
    """The load balancer's own WAFv2 web ACL (components/aws/web_firewall.py)."""

    enabled: bool = True
    """a web ACL of the program's own on the load balancer: AWS's common and known-bad-inputs rule groups (sized for multi-GB artifact uploads) and a per-IP rate limit, its verdicts logged; `false` is refused on an internet-facing load balancer unless `loadBalancer.wafAclArn` names another ACL"""
    # 20 requests/s sustained per client address: far above a training job or a browser, far
    # below a flood or a password-guessing run. A whole cluster behind one NAT address counts once.
    rate_limit_per_5_minutes: int = Field(default=60000, ge=WAF_MIN_RATE_LIMIT, le=2_000_000_000)
    """requests one client address may send in any 5 minutes; past that WAF answers 403 until its rate drops (AWS's minimum: 10)"""


class AwsLoadBalancerSettings(ConfigModel):
    # The HTTPS name clients use; the certificate must cover it.
    domain_name: DomainName | None = None
    """your host name (both)"""
    # An existing ACM certificate in aws.region, or None to create one validated in hostedZoneId.
    certificate_arn: str | None = Field(default=None, pattern=ACM_CERTIFICATE_ARN)
    """your certificate, or delete the key"""
    # Route 53 zone of domainName: DNS validation of a created certificate and an alias record.
    hosted_zone_id: str | None = Field(default=None, pattern=HOSTED_ZONE_ID)
    """its Route 53 zone"""
    ssl_policy: TlsPolicy = "ELBSecurityPolicy-TLS13-1-2-Res-2021-06"
    """only TLS 1.2+/1.3 policies accepted"""
    # Seconds a connection may sit without bytes: MLflow copying a multi-GB proxied upload to S3
    # sends nothing until it is done. The server's keep-alive is derived from it (always longer).
    idle_timeout_seconds: int = Field(default=3600, ge=60, le=3900)
    """≥ the time MLflow takes to copy the largest proxied upload to S3; the server's keep-alive is this + 15 s"""
    # Who may reach 80/443. Narrow it (a VPN range) where the server needs no internet clients.
    ingress_cidrs: list[IPv4Network] = Field(default_factory=lambda: [IPv4Network("0.0.0.0/0")], min_length=1)
    """who reaches 80/443; with `auth.mode: none` only private or reserved ranges (or `internal: true`)"""
    internal: bool = False
    """an internal ALB (VPN / peered networks)"""
    deletion_protection: bool = True
    """`pulumi destroy` fails until this is false (and applied)"""
    waf_acl_arn: str | None = Field(default=None, pattern=WAF_ACL_ARN)
    """a regional WAFv2 web ACL of your own (e.g. Firewall Manager's) to associate instead of the program's; then leave `loadBalancer.waf` out"""
    waf: AwsWafSettings = Field(default_factory=AwsWafSettings)
    """`enabled`, `rateLimitPer5Minutes`: the program's own web ACL"""


class AwsTaskSettings(ConfigModel):
    """The Fargate tasks of the tracking server; their minimum count is tracking.replicas."""

    cpu: int = 1024
    """Fargate CPU units of a task (256-16384)"""
    memory_mib: int = 4096
    """its memory: a size Fargate pairs with `tasks.cpu`"""
    # Fargate ephemeral storage: the writable scratch where proxied uploads are spooled.
    ephemeral_storage_gib: int = Field(default=50, ge=21, le=200)
    """21-200; the scratch space for proxied uploads (≥ largest artifact × concurrent uploads per task)"""
    max_count: int = Field(default=8, ge=2, le=100)
    """autoscaling ceiling; 8 is the 200-active-user row of docs/sizing.md"""
    target_cpu_percent: int = Field(default=60, ge=10, le=90)
    """CPU target"""
    target_requests_per_task: int = Field(default=1600, ge=10, le=1_000_000)
    """ALB requests per target per minute; 1600 is what a 1-vCPU task serves at the CPU target under docs/sizing.md's mix"""
    # `pulumi up` waits for the new tasks to be healthy (and fails if the rollout rolls back).
    wait_for_steady_state: bool = True
    """`pulumi up` waits for healthy tasks"""


class AwsJobQueueSettings(ConfigModel):
    """ElastiCache (Valkey) holding the server jobs' queue (only with `tracking.jobExecution`)."""

    node_type: str = Field(default="cache.t4g.small", pattern=r"^cache\.[a-z0-9]+\.[a-z0-9]+$")
    """ElastiCache node type of each node (the queue holds job ids and parameters: small is plenty)"""
    # A primary and its replicas, in different zones: a lost primary fails over to a replica.
    nodes: int = Field(default=2, ge=2, le=6)
    """primary + replicas (2-6) over the private subnets' zones, with automatic failover"""


class AwsRegistrySettings(ConfigModel):
    """The ECR repository of the MLflow image (components/aws/registry.py)."""

    # Amazon Inspector's continuous scanning of this repository (OS and Python packages, rescanned
    # when a new CVE is published). A registry-wide setting of the account and region: docs/aws.md.
    enhanced_scanning: bool = False
    """Amazon Inspector scans the repository continuously (~$0.09 per image pushed, ~$0.01 per rescan). Rewrites the registry's scanning configuration for the whole account and region: docs/aws.md"""
    force_delete: bool = False
    """lets destroy delete the repository with its images; `false`: destroy fails on a repository that still holds images (docs/aws.md, Destroying)"""


class AwsLogSettings(ConfigModel):
    # Container, database and WAF logs in CloudWatch.
    retention_days: LogRetentionDays = 365
    """CloudWatch retention (container, RDS and WAF logs): 90 days at least"""
    # The servers' audit log (one JSON line per write), in a log group of its own.
    audit_retention_days: LogRetentionDays = 365
    """CloudWatch retention of the audit log (who changed what): 90 days at least"""
    # ALB access logs and flow logs in the log bucket.
    access_log_expiration_days: int = Field(default=365, ge=1, le=3650)
    """ALB access logs and flow logs"""


# EventBridge Scheduler and AWS Backup take the same two forms: cron(min hour dom month dow year)
# and rate(n unit) (EventBridge Scheduler user guide, schedule types; AWS Backup's
# ScheduleExpression is a cron expression).
CRON_EXPRESSION = r"^cron\(\S+ \S+ \S+ \S+ \S+ \S+\)$"
SCHEDULE_EXPRESSION = r"^(cron\(\S+ \S+ \S+ \S+ \S+ \S+\)|rate\([1-9]\d* (minute|minutes|hour|hours|day|days)\))$"
# AWS Backup refuses a retention shorter than a day and, for a cold-storage-free rule, has no
# maximum below 100 years; RDS snapshots and S3 backups take any day count.
MAX_BACKUP_RETENTION_DAYS = 36500


class AwsBackupSettings(ConfigModel):
    """AWS Backup of the metadata database and the artifact bucket (components/aws/backup.py), on
    top of RDS's own automated backups (`database.backupRetentionDays`) and S3 versioning."""

    enabled: bool = True
    """a backup plan of the RDS instance and the artifact bucket, into a vault encrypted with the stack's backup key"""
    schedule: str = Field(default="cron(0 6 * * ? *)", pattern=CRON_EXPRESSION)
    """when each backup starts (UTC), an AWS Backup cron expression; the default, 06:00, is after `database.backupWindow` and the weekly maintenance window"""
    retention_days: int = Field(default=35, ge=1, le=MAX_BACKUP_RETENTION_DAYS)
    """days each recovery point is kept in the vault"""
    copy_region: str | None = Field(default=None, pattern=AWS_REGION_PATTERN)
    """a second region each recovery point is copied to (a vault of the stack's there, under a key of that region); unset: no copy"""
    copy_retention_days: int | None = Field(default=None, ge=1, le=MAX_BACKUP_RETENTION_DAYS)
    """days the copies are kept; unset: `backup.retentionDays`"""


class AwsGcSettings(GcSettings):
    """`mlflow gc` on a schedule (components/aws/garbage_collector.py): nothing is created unless
    both `olderThan` and `schedule` are set."""

    schedule: str | None = Field(default=None, pattern=SCHEDULE_EXPRESSION)
    """when gc runs (UTC), an EventBridge Scheduler expression: `cron(0 2 * * ? *)` or `rate(1 day)`"""

    @property
    def enabled(self) -> bool:
        return self.older_than is not None and self.schedule is not None


class AwsMonitoringSettings(ConfigModel):
    """The CloudWatch dashboard and alarms (components/aws/monitoring.py); every alarm notifies
    the stack's SNS topic, on alarm and on recovery."""

    alarm_email: EmailStr | None = None
    """an address subscribed to the alarm topic (AWS mails a confirmation link first); unset: subscribe what you like to the `alarmTopicArn` output"""
    error_rate_percent: float = Field(default=5.0, gt=0, le=100)
    """ALB 5xx (its own and the targets') as a percentage of requests, over 5 minutes"""
    server_errors: int = Field(default=20, ge=1)
    """5xx answered by the servers in 5 minutes"""
    p99_latency_seconds: float = Field(default=5.0, gt=0, le=3900)
    """p99 `TargetResponseTime` over 5 minutes, 3 periods in a row"""
    elb_client_errors: int = Field(default=500, ge=1)
    """4xx answered by the ALB itself in 5 minutes (413s of uploads too large, WAF blocks)"""
    cpu_percent: int = Field(default=85, ge=1, le=100)
    """ECS service CPU, 3 × 5 minutes"""
    memory_percent: int = Field(default=85, ge=1, le=100)
    """ECS service memory, 3 × 5 minutes"""
    database_cpu_percent: int = Field(default=85, ge=1, le=100)
    """RDS CPU, 3 × 5 minutes"""
    database_free_storage_gb: int = Field(default=5, ge=1)
    """RDS free storage below this (storage autoscaling stops at `database.maxAllocatedStorageGb`)"""
    database_freeable_memory_mb: int = Field(default=256, ge=1)
    """RDS freeable memory below this"""
    database_connections_percent: int = Field(default=80, ge=1, le=100)
    """RDS connections above this share of the instance's `max_connections`"""


class AwsTargetSettings(ConfigModel):
    region: str = Field(pattern=AWS_REGION_PATTERN)
    """the region to deploy to"""
    # The provider refuses any other account: a wrong profile cannot deploy prod elsewhere.
    allowed_account_ids: list[ACCOUNT_ID] = Field(default_factory=list)
    """your prod account id (the provider refuses any other)"""
    network: AwsNetworkSettings = Field(default_factory=AwsNetworkSettings)


class AwsSettings(ConfigModel):
    target: Literal["aws"]
    """`docker` (laptop) or `aws` (production)"""
    tracking: TrackingSettings = Field(default_factory=TrackingSettings)
    database: AwsDatabaseSettings = Field(default_factory=AwsDatabaseSettings)
    artifact_store: AwsArtifactStoreSettings = Field(default_factory=AwsArtifactStoreSettings)
    load_balancer: AwsLoadBalancerSettings = Field(default_factory=AwsLoadBalancerSettings)
    auth: AuthSettings = Field(default_factory=AuthSettings)
    tasks: AwsTaskSettings = Field(default_factory=AwsTaskSettings)
    logs: AwsLogSettings = Field(default_factory=AwsLogSettings)
    registry: AwsRegistrySettings = Field(default_factory=AwsRegistrySettings)
    job_queue: AwsJobQueueSettings = Field(default_factory=AwsJobQueueSettings)
    backup: AwsBackupSettings = Field(default_factory=AwsBackupSettings)
    gc: AwsGcSettings = Field(default_factory=AwsGcSettings)
    monitoring: AwsMonitoringSettings = Field(default_factory=AwsMonitoringSettings)
    aws: AwsTargetSettings

    @model_validator(mode="before")
    @classmethod
    def _production_defaults(cls, data: Any) -> Any:
        """Where prod's defaults differ from the shared ones (explicit keys always win): at least
        two tasks, and the load balancer's name as the Host MLflow accepts."""
        if not isinstance(data, dict) or not isinstance(data.get("tracking", {}), dict):
            return data
        tracking = dict(data.get("tracking", {}))
        tracking.setdefault("replicas", 2)
        balancer = data.get("loadBalancer")
        if isinstance(balancer, dict) and isinstance(balancer.get("domainName"), str):
            tracking.setdefault("allowedHosts", [balancer["domainName"]])
        return {**data, "tracking": tracking}

    def semantic_problems(self) -> list[tuple[str, str]]:
        """Rules across keys, as (key path, reason)."""
        return [
            *self.tracking.semantic_problems(),
            *self._database_problems(),
            *self._https_problems(),
            *self._waf_problems(),
            *self._auth_problems(),
            *self._server_problems(),
            *self._network_problems(),
            *self._region_problems(),
            *self._backup_problems(),
        ]

    def _backup_problems(self) -> list[tuple[str, str]]:
        backup, gc, problems = self.backup, self.gc, []
        if backup.copy_region is not None and backup.copy_region == self.aws.region:
            problems.append(("backup.copyRegion", f"must be another region than aws.region {self.aws.region}"))
        if backup.copy_retention_days is not None and backup.copy_region is None:
            problems.append(("backup.copyRetentionDays", "is ignored unless backup.copyRegion is set; remove it"))
        if (gc.older_than is None) != (gc.schedule is None):
            given, missing = ("olderThan", "schedule") if gc.schedule is None else ("schedule", "olderThan")
            problems.append((f"gc.{missing}", f"required with gc.{given}: gc runs only with both set"))
        return problems

    def _database_problems(self) -> list[tuple[str, str]]:
        db, problems = self.database, []
        if db.publicly_accessible:
            problems.append(
                (
                    "database.publiclyAccessible",
                    "the metadata database must not be public: it lives in private subnets and only the "
                    "tracking server's tasks reach it; remove this key",
                )
            )
        if db.max_allocated_storage_gb < db.allocated_storage_gb:
            problems.append(
                (
                    "database.maxAllocatedStorageGb",
                    f"must be at least allocatedStorageGb ({db.allocated_storage_gb}), the storage autoscaling ceiling",
                )
            )
        if not db.proxy:
            problems += self._direct_connection_problems()
        if db.major_version < 14:
            problems.append(
                (
                    "database.engineVersion",
                    f"PostgreSQL {db.major_version} is past RDS standard support; use 14 or later",
                )
            )
        return problems

    def connection_budget(self) -> ConnectionBudget:
        """The worst case of the servers' connections: every pool of every worker of every task
        at the autoscaling maximum, doubled while a rolling deploy runs old and new tasks."""
        return ConnectionBudget(
            workers=self.tracking.workers,
            servers=self.tasks.max_count,
            engines=engines_per_worker(basic_auth=self.auth.mode == "basic-auth"),
            surge=ECS_DEPLOYMENT_SURGE,
        )

    def database_max_connections(self) -> int | None:
        """`max_connections` of the instance: the servers' worst case without the proxy (the
        parameter group sets it), else RDS's default for the class's memory; None: unknown class."""
        if not self.database.proxy:
            return self.connection_budget().total
        memory = instance_memory_gib(self.database.instance_class)
        return None if memory is None else rds_default_max_connections(memory)

    def connections_alarm_threshold(self) -> int | None:
        """Connections past which the connections alarm fires: the configured share of max_connections."""
        limit = self.database_max_connections()
        return None if limit is None else max(1, limit * self.monitoring.database_connections_percent // 100)

    def _direct_connection_problems(self) -> list[tuple[str, str]]:
        budget, instance_class = self.connection_budget(), self.database.instance_class
        memory = instance_memory_gib(instance_class)
        if memory is None or budget.total <= rds_default_max_connections(memory):
            return []
        return [
            (
                "database.proxy",
                f"without RDS Proxy the servers may open {budget.total} connections ({budget.explain()}), but a "
                f"{instance_class} ({memory:g} GiB) should run at most {rds_default_max_connections(memory)} (RDS's default "
                "for its memory); keep database.proxy: true, or use a larger instanceClass, fewer tasks.maxCount or "
                "tracking.workers",
            )
        ]

    def _https_problems(self) -> list[tuple[str, str]]:
        lb, problems = self.load_balancer, []
        if lb.domain_name is None:
            problems.append(
                (
                    "loadBalancer.domainName",
                    "required: a prod stack serves HTTPS only, on a name its certificate covers (e.g. mlflow.example.com)",
                )
            )
        if lb.certificate_arn is None and lb.hosted_zone_id is None:
            problems.append(
                (
                    "loadBalancer.certificateArn",
                    "a prod stack serves HTTPS only: set certificateArn (an ACM certificate for domainName) "
                    "or hostedZoneId (to create one, DNS-validated in that Route 53 zone)",
                )
            )
        if lb.domain_name and lb.domain_name not in self.tracking.allowed_hosts:
            problems.append(
                (
                    "tracking.allowedHosts",
                    f"must include loadBalancer.domainName '{lb.domain_name}': the load balancer forwards the Host "
                    "header and MLflow refuses hosts not listed",
                )
            )
        return problems

    def _waf_problems(self) -> list[tuple[str, str]]:
        lb, problems = self.load_balancer, []
        if lb.waf_acl_arn and "waf" in lb.model_fields_set:
            problems.append(
                (
                    "loadBalancer.waf",
                    "a load balancer takes one web ACL: with loadBalancer.wafAclArn (yours) the program creates none, "
                    "so remove loadBalancer.waf (or wafAclArn)",
                )
            )
        if not lb.waf.enabled and lb.waf_acl_arn is None and not lb.internal:
            problems.append(
                (
                    "loadBalancer.waf.enabled",
                    "false is refused on an internet-facing load balancer: keep the program's web ACL, name your own "
                    "in loadBalancer.wafAclArn, or set loadBalancer.internal",
                )
            )
        return problems

    def _auth_problems(self) -> list[tuple[str, str]]:
        auth, lb, problems = self.auth, self.load_balancer, []
        if auth.mode == "oidc" and auth.oidc is None:
            problems.append(
                ("auth.oidc", "required when auth.mode is 'oidc': issuer, endpoints, clientId, clientSecret")
            )
        if auth.mode == "cognito" and auth.cognito is None:
            problems.append(
                ("auth.cognito", "required when auth.mode is 'cognito': userPoolArn, userPoolClientId, userPoolDomain")
            )
        for section in ("oidc", "cognito"):
            if getattr(auth, section) is not None and auth.mode != section:
                problems.append(
                    (f"auth.{section}", f"is ignored unless auth.mode is '{section}' (it is {auth.mode!r}); remove it")
                )
        public = [str(cidr) for cidr in lb.ingress_cidrs if public_addresses(cidr)]
        if auth.users and auth.mode != "basic-auth":
            problems.append(("auth.users", f"needs auth.mode: basic-auth (MLflow's users); it is {auth.mode!r}"))
        problems += auth.access_problems(
            "auth", admin_username=auth.admin_username, workspaces=self.tracking.workspaces
        )
        if auth.mode == "none" and not lb.internal and public:
            problems.append(
                (
                    "auth.mode",
                    f"'none' (no sign-in at all) is refused on an internet-facing load balancer whose "
                    f"loadBalancer.ingressCidrs include public addresses ({', '.join(public)}): only private or reserved "
                    "ranges (10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16, 100.64.0.0/10, ...) may reach an unauthenticated "
                    "MLflow; use basic-auth, oidc or cognito, or set loadBalancer.internal",
                )
            )
        return problems

    def _server_problems(self) -> list[tuple[str, str]]:
        tasks, problems = self.tasks, []
        if self.tracking.replicas < 2:
            problems.append(
                (
                    "tracking.replicas",
                    f"a prod service runs at least 2 tasks, spread over availability zones (got {self.tracking.replicas})",
                )
            )
        if tasks.max_count < self.tracking.replicas:
            problems.append(("tasks.maxCount", f"must be at least tracking.replicas ({self.tracking.replicas})"))
        if tasks.cpu not in FARGATE_SIZES:
            problems.append(
                ("tasks.cpu", f"Fargate takes {', '.join(map(str, FARGATE_SIZES))} CPU units (got {tasks.cpu})")
            )
        elif tasks.memory_mib not in FARGATE_SIZES[tasks.cpu]:
            sizes = FARGATE_SIZES[tasks.cpu]
            problems.append(
                (
                    "tasks.memoryMib",
                    f"Fargate with {tasks.cpu} CPU units takes {sizes[0]} to {sizes[-1]} MiB in its steps (got {tasks.memory_mib})",
                )
            )
        elif tasks.memory_mib < (needed := server_memory_mib(self.tracking.job_execution)):
            problems.append((
                "tasks.memoryMib",
                f"{tasks.memory_mib} MiB is below what one server needs"
                f"{' with its job workers' if self.tracking.job_execution else ''}: {needed} MiB "
                "(measured, components/sizes.py); give more, or set tracking.jobExecution: false",
            ))  # fmt: skip
        if self.tracking.artifacts == "direct":
            problems.append(
                (
                    "tracking.artifacts",
                    "'direct' needs every client to read and write the bucket with its own AWS credentials, but only "
                    "the tracking server's task role may; use 'proxied'",
                )
            )
        return problems

    def _network_problems(self) -> list[tuple[str, str]]:
        net, problems = self.aws.network, []
        public, private = net.existing_public_subnet_ids, net.existing_private_subnet_ids
        if net.existing_vpc_id is None:
            if public or private:
                problems.append(("aws.network.existingVpcId", "required when existing subnet ids are given"))
            return problems
        for key, ids in (("existingPublicSubnetIds", public), ("existingPrivateSubnetIds", private)):
            if len(set(ids)) < 2:
                problems.append((f"aws.network.{key}", "give at least 2 subnets, in different availability zones"))
        if set(public) & set(private):
            problems.append(("aws.network.existingPrivateSubnetIds", "a subnet cannot be both public and private"))
        return problems

    def _region_problems(self) -> list[tuple[str, str]]:
        region, problems = self.aws.region, []
        arns = {
            "loadBalancer.certificateArn": self.load_balancer.certificate_arn,
            "loadBalancer.wafAclArn": self.load_balancer.waf_acl_arn,
            "artifactStore.kmsKeyArn": self.artifact_store.kms_key_arn,
        }
        for key, arn in arns.items():
            if arn and _region_of(arn) != region:
                problems.append((key, f"is in {_region_of(arn)}, but the stack deploys to aws.region {region}"))
        return problems
