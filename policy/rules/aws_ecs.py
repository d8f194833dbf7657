"""ECS on Fargate: the tracking server's task definition, service and cluster."""

from __future__ import annotations

from .base import (
    UNKNOWN,
    Res,
    Stack,
    get,
    is_true,
    items,
    label,
    number,
    parse_json,
    resource_rule,
    secret_env_problem,
    stack_rule,
)

TASK_DEFINITION = "aws:ecs/taskDefinition:TaskDefinition"
SERVICE = "aws:ecs/service:Service"
CLUSTER = "aws:ecs/cluster:Cluster"
LOG_GROUP = "aws:cloudwatch/logGroup:LogGroup"
ROOT_USERS = ("root", "0")


def containers(r: Res) -> list[dict] | None:
    """The parsed containerDefinitions, or None when unknown during preview."""
    parsed = parse_json(r.get("containerDefinitions"))
    if parsed is UNKNOWN or not isinstance(parsed, list):
        return None
    return [c for c in parsed if isinstance(c, dict)]


def _name(container: dict) -> str:
    return str(container.get("name", "?"))


@resource_rule(
    "ecs-no-secrets-in-environment",
    ["FSBP ECS.8"],
    "No secret in a container's plain environment (use `secrets` from Secrets Manager)",
    [TASK_DEFINITION],
)
def no_secrets_in_environment(r: Res) -> list[str]:
    found = []
    for container in containers(r) or []:
        for entry in items(container.get("environment")):
            problem = secret_env_problem(str(get(entry, "name", "")), get(entry, "value"))
            if problem:
                found.append(f"container '{_name(container)}': {problem}; pass it in `secrets` instead")
    return found


@resource_rule(
    "ecs-read-only-root-filesystem",
    ["CKV_AWS_336", "FSBP ECS.5"],
    "Containers run with a read-only root filesystem",
    [TASK_DEFINITION],
)
def read_only_root(r: Res) -> list[str]:
    return [
        f"container '{_name(c)}': readonlyRootFilesystem must be true"
        for c in containers(r) or []
        if c.get("readonlyRootFilesystem") is not True
    ]


@resource_rule("ecs-not-privileged", ["FSBP ECS.4"], "Containers are not privileged", [TASK_DEFINITION])
def not_privileged(r: Res) -> list[str]:
    return [
        f"container '{_name(c)}': privileged must not be true"
        for c in containers(r) or []
        if c.get("privileged") is True
    ]


@resource_rule("ecs-non-root-user", ["FSBP ECS.20"], "Linux containers run as a non-root user", [TASK_DEFINITION])
def non_root_user(r: Res) -> list[str]:
    if str(r.get("runtimePlatform.operatingSystemFamily", "LINUX")).upper() != "LINUX":
        return []
    found = []
    for c in containers(r) or []:
        user = str(c.get("user") or "")
        if not user or user.split(":")[0] in ROOT_USERS:
            found.append(f"container '{_name(c)}': user must be a non-root uid (is {user or 'unset'!r})")
    return found


@stack_rule(
    "ecs-logs-with-retention",
    ["FSBP ECS.9", "CKV_AWS_66"],
    "Containers log to a CloudWatch log group of this stack that has a retention period",
    [TASK_DEFINITION, LOG_GROUP],
)
def logs_with_retention(stack: Stack) -> list[tuple[str, str]]:
    found = []
    for task in stack.of(TASK_DEFINITION):
        for c in containers(task) or []:
            where = f"{label(task)} container '{_name(c)}'"
            driver = get(c, "logConfiguration.logDriver")
            if not driver:
                found.append((task.urn, f"{where} has no logConfiguration"))
                continue
            if driver != "awslogs":
                continue
            group_name = get(c, "logConfiguration.options.awslogs-group")
            groups = (
                [g for g in stack.of(LOG_GROUP) if g.get("name") == group_name]
                or stack.joined(task, "containerDefinitions", LOG_GROUP)
                # Several groups for the task's containers (the server's, its audit sidecar's) and
                # no name to tell which: every one it depends on must keep logs for a while.
                or [
                    stack.by_urn[u]
                    for u in task.dependencies
                    if u in stack.by_urn and stack.by_urn[u].type == LOG_GROUP
                ]
            )
            if not groups:
                found.append(
                    (
                        task.urn,
                        f"{where} logs to '{group_name}', which is not a log group of this stack "
                        "(its retention cannot be checked)",
                    )
                )
            for group in groups:
                days = group.get("retentionInDays")
                if days is not UNKNOWN and not (number(days) or 0) > 0:
                    found.append(
                        (group.urn, f"{where} logs to {label(group)}, which keeps logs forever (set retentionInDays)")
                    )
    return found


@resource_rule("ecs-no-public-ip", ["CKV_AWS_333", "FSBP ECS.2"], "Services do not give tasks a public IP", [SERVICE])
def no_public_ip(r: Res) -> list[str]:
    return (
        ["networkConfiguration.assignPublicIp must be false"]
        if is_true(r.get("networkConfiguration.assignPublicIp"))
        else []
    )


@resource_rule(
    "ecs-circuit-breaker-rollback",
    ["AWS Well-Architected REL08 (automatic rollback)"],
    "Services roll a failed deployment back (deployment circuit breaker with rollback)",
    [SERVICE],
)
def circuit_breaker(r: Res) -> list[str]:
    if r.get("deploymentController.type", "ECS") != "ECS":
        return []  # CodeDeploy/external controllers roll back themselves
    enable = is_true(r.get("deploymentCircuitBreaker.enable"))
    rollback = is_true(r.get("deploymentCircuitBreaker.rollback"))
    if enable is False or rollback is False:
        return ["deploymentCircuitBreaker must have enable and rollback set to true"]
    return []


@resource_rule(
    "ecs-container-insights", ["CKV_AWS_65", "FSBP ECS.12"], "Clusters have Container Insights on", [CLUSTER]
)
def container_insights(r: Res) -> list[str]:
    settings = r.get("settings")
    if settings is UNKNOWN:
        return []
    values = [get(s, "value") for s in items(settings) if get(s, "name") == "containerInsights"]
    if any(v in ("enabled", "enhanced") or v is UNKNOWN for v in values):
        return []
    return ["settings must turn containerInsights on ('enabled' or 'enhanced')"]


@resource_rule(
    "ecs-fargate-storage-cmk",
    # No FSBP, CIS or Checkov control covers it yet: the NIST control of data at rest.
    ["NIST 800-53 SC-28(1)"],
    "Clusters encrypt Fargate ephemeral storage (spooled uploads) with a customer-managed key",
    [CLUSTER],
)
def fargate_storage_cmk(r: Res) -> list[str]:
    key = r.get("configuration.managedStorageConfiguration.fargateEphemeralStorageKmsKeyId")
    if key is UNKNOWN or key:
        return []
    return ["configuration.managedStorageConfiguration.fargateEphemeralStorageKmsKeyId must name a KMS key"]
