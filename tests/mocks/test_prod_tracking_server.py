"""TrackingServer: the task definition, its container (the server spec, run as in dev), the
service and its autoscaling.
"""

from __future__ import annotations

import re
from dataclasses import replace

import pytest

from components.aws.lib.container import EcsSecret, SecretLeakError, container_definition
from components.aws.metadata_store import rds_endpoint
from components.aws.platform import server_spec
from components.aws.tracking_server import health_grace_seconds
from components.specs.endpoints import ArtifactEndpoint, JobQueueEndpoint
from components.specs.mlflow_server import server_shape
from images.mlflow import server_contract as contract
from tests.mocks.prod_helpers import (
    ACCOUNT,
    BUCKET,
    REGION,
    REPO_ROOT,
    artifact,
    aws_outputs,
    container,
    log_group_name,
    prod_section,
    prod_settings,
    run_prod,
    secret_paths,
    sg_id,
)

# Where the mocks put the job queue (the spec only needs to know there is one).
QUEUE = JobQueueEndpoint(host="master.mlflow-prod-jobs.cache.amazonaws.com", port=6379, tls=True)


def test_task_definition_runs_the_image_digest_non_root_on_a_read_only_root(prod_run):
    c = container(prod_run)
    assert re.fullmatch(rf"{ACCOUNT}\.dkr\.ecr\.{REGION}\.amazonaws\.com/[\w-]+@sha256:[0-9a-f]{{64}}", c["image"])
    assert c["readonlyRootFilesystem"] is True
    assert c["user"] == "10001:10001"
    assert c["linuxParameters"]["capabilities"]["drop"] == ["ALL"]
    assert "privileged" not in c


def test_task_definition_passes_secrets_as_ecs_secrets_never_as_environment(prod_run):
    c = container(prod_run)
    env = {e["name"]: e["value"] for e in c["environment"]}
    secrets = {s["name"]: s["valueFrom"] for s in c["secrets"]}
    assert set(secrets) == {
        "MLFLOW_DB_PASSWORD",
        "MLFLOW_DB_OWNER_PASSWORD",
        "MLFLOW_AUTH_ADMIN_PASSWORD",
        "MLFLOW_FLASK_SERVER_SECRET_KEY",
        # The declared users and roles, with their passwords (tests/mocks/test_prod_access.py).
        "MLFLOW_PLATFORM_AUTH_DECLARATION",
        "MLFLOW_CRYPTO_KEK_PASSPHRASE",
        "MLFLOW_WEBHOOK_SECRET_ENCRYPTION_KEY",
        # The job queue's rediss:// URL, auth token included (MLflow reads it from the env only).
        "MLFLOW_SERVER_JOB_HUEY_REDIS_URL",
    }
    assert not set(env) & set(secrets)
    assert not any(re.search("PASSWORD|SECRET|TOKEN", name) and not name.endswith("_PATH") for name in env)
    # Pinned to the version the program wrote: <arn>:<json key>:<stage, empty>:<version id>.
    versions = {v.name: v for v in prod_run.of_type("aws:secretsmanager/secretVersion:SecretVersion")}
    db_version = aws_outputs(versions["mlflow-prod-db-server-credentials"].typ, "mlflow-prod-db-server-credentials", {})
    assert secrets["MLFLOW_DB_PASSWORD"] == (
        f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:mlflow-prod-db-server-credentials-AbCdEf:password::"
        f"{db_version['versionId']}"
    )
    # Every secret this program writes is pinned; RDS's master secret alone is read at AWSCURRENT
    # (RDS rotates it: a pinned version would be retired under the tasks).
    ours = {name: value for name, value in secrets.items() if name != "MLFLOW_DB_OWNER_PASSWORD"}
    assert all(
        re.fullmatch(r"arn:aws:secretsmanager:[^:]+:\d{12}:secret:[\w-]+:\w+::[0-9a-f-]{36}", value)
        for value in ours.values()
    ), secrets
    assert re.fullmatch(r"arn:aws:secretsmanager:[^:]+:\d{12}:secret:rds![\w-]+:password::",
                        secrets["MLFLOW_DB_OWNER_PASSWORD"])  # fmt: skip
    assert env["MLFLOW_DB_SSLMODE"] == "verify-full"
    assert env["MLFLOW_DB_SSLROOTCERT"] in (
        "/etc/ssl/certs/ca-certificates.crt",
        "/etc/ssl/certs/rds-global-bundle.pem",
    )
    # RDS Proxy's endpoint (test_prod_database.py).
    proxy = prod_run.one("aws:rds/proxy:Proxy").name
    assert env["MLFLOW_DB_HOST"] == f"{proxy}.proxy-abcdefghijkl.{REGION}.rds.amazonaws.com"
    # The task definition as a whole holds no secret value (it would be in plain ECS API output).
    assert secret_paths(prod_run.exactly("aws:ecs/taskDefinition:TaskDefinition", "mlflow-prod").inputs) == []


def test_no_task_definition_is_registered_before_its_secret_values_exist(prod_run):
    """ECS fetches the secrets when a task starts: the values must exist by then."""
    task = prod_run.exactly("aws:ecs/taskDefinition:TaskDefinition", "mlflow-prod")
    versions = prod_run.of_type("aws:secretsmanager/secretVersion:SecretVersion")
    assert len(versions) == 4  # database, encryption keys, basic-auth, the job queue's URL
    for version in versions:
        assert version.urn in task.property_dependencies["containerDefinitions"], version.name


def test_scratch_is_a_writable_ephemeral_volume_sized_from_config(prod_run):
    task = prod_run.exactly("aws:ecs/taskDefinition:TaskDefinition", "mlflow-prod").plain
    c = container(prod_run)
    env = {e["name"]: e["value"] for e in c["environment"]}
    assert task["ephemeralStorage"]["sizeInGib"] == prod_section("tasks")["ephemeralStorageGib"]
    (mount,) = c["mountPoints"]
    # The image's VOLUME (owned by uid 10001): on Fargate only that path gives a writable task volume.
    assert mount["containerPath"] == "/scratch" == env["TMPDIR"] == env["HOME"]
    assert mount["readOnly"] is False
    assert task["volumes"] == [{"name": mount["sourceVolume"]}]  # no host path: task-local ephemeral storage


def test_task_definition_is_fargate_with_separate_roles(prod_run):
    task = prod_run.exactly("aws:ecs/taskDefinition:TaskDefinition", "mlflow-prod").plain
    assert task["requiresCompatibilities"] == ["FARGATE"] and task["networkMode"] == "awsvpc"
    assert task["taskRoleArn"].endswith("role/mlflow-prod-task")
    assert task["executionRoleArn"].endswith("role/mlflow-prod-execution")
    assert (task["cpu"], task["memory"]) == ("1024", "4096")


def test_container_logs_go_to_awslogs_with_retention(prod_run):
    c = container(prod_run)
    log = c["logConfiguration"]
    assert log["logDriver"] == "awslogs" and log["options"]["awslogs-region"] == REGION
    group = next(r.plain for r in prod_run.of_type("aws:cloudwatch/logGroup:LogGroup")
                 if log_group_name(r) == log["options"]["awslogs-group"])  # fmt: skip
    assert group["retentionInDays"] == prod_section("logs")["retentionDays"]
    assert group["kmsKeyId"]


def test_container_runs_the_spec_command_and_health_check(prod_run):
    settings = prod_settings()
    c = container(prod_run)
    env = {e["name"]: e["value"] for e in c["environment"]}
    bucket = f"{artifact(prod_run, BUCKET).name}-0a1b2c3"
    database = rds_endpoint(settings.database, env["MLFLOW_DB_HOST"], through_proxy=settings.database.proxy)
    spec = server_spec(settings, server_shape(), database, ArtifactEndpoint(bucket=bucket, region=REGION), QUEUE)
    assert c["entryPoint"] + c["command"] == list(spec.argv)
    assert {k: env[k] for k in spec.env} == dict(spec.env)
    assert c["healthCheck"] == {
        "command": spec.health.test,
        "interval": spec.health.interval_seconds,
        "timeout": spec.health.timeout_seconds,
        "retries": spec.health.retries,
        "startPeriod": spec.health.start_period_seconds,
    }
    assert c["portMappings"][0]["containerPort"] == spec.port
    assert f"s3://{bucket}/" in c["command"]


def test_the_ui_origin_of_the_load_balancer_is_allowed(prod_run):
    """Browsers send Origin on the UI's same-origin POSTs (run and trace searches); MLflow refuses
    a non-localhost Origin missing from --cors-allowed-origins (security_utils.should_block_cors_request)."""
    command = container(prod_run)["command"]
    domain = prod_settings().load_balancer.domain_name
    assert command[command.index("--cors-allowed-origins") + 1].split(",") == [f"https://{domain}"]


def test_service_runs_two_tasks_across_azs_with_circuit_breaker_rollback(prod_run):
    service = prod_run.exactly("aws:ecs/service:Service", "mlflow-prod").plain
    assert service["desiredCount"] >= 2
    assert service["launchType"] == "FARGATE"
    assert service["deploymentCircuitBreaker"] == {"enable": True, "rollback": True}
    network = service["networkConfiguration"]
    assert network["assignPublicIp"] is False and network["securityGroups"] == [sg_id(prod_run, "tasks")]
    private = [
        f"{r.name}-id" for r in prod_run.of_type("aws:ec2/subnet:Subnet") if r.plain["tags"]["tier"] == "private"
    ]
    assert sorted(network["subnets"]) == sorted(private)
    assert service["enableExecuteCommand"] is False
    assert service["loadBalancers"][0]["containerPort"] == 5000
    cluster = prod_run.one("aws:ecs/cluster:Cluster").plain
    assert {"name": "containerInsights", "value": "enabled"} in cluster["settings"]


def test_service_autoscales_on_cpu_and_request_count(prod_run):
    target = prod_run.one("aws:appautoscaling/target:Target").plain
    assert (target["minCapacity"], target["maxCapacity"]) == (2, prod_section("tasks")["maxCount"])
    metrics = {}
    for p in prod_run.of_type("aws:appautoscaling/policy:Policy"):
        config = p.plain["targetTrackingScalingPolicyConfiguration"]
        metrics[config["predefinedMetricSpecification"]["predefinedMetricType"]] = config[
            "predefinedMetricSpecification"
        ]
    assert set(metrics) == {"ECSServiceAverageCPUUtilization", "ALBRequestCountPerTarget"}
    assert re.fullmatch(r"app/.+/\w+/targetgroup/.+/\w+", metrics["ALBRequestCountPerTarget"]["resourceLabel"])


def test_the_deploy_workflow_outlives_the_longest_rollout(prod_run):
    """The job timeout and the AWS session cover a first Multi-AZ deploy plus a full drain."""
    import yaml

    service = prod_run.exactly("aws:ecs/service:Service", "mlflow-prod")
    workflow = yaml.safe_load((REPO_ROOT / ".github/workflows/deploy.yml").read_text())
    job = workflow["jobs"]["up"]
    (credentials,) = [step for step in job["steps"] if "configure-aws-credentials" in step.get("uses", "")]
    rollout_minutes = int(service.custom_timeouts["update"].rstrip("m"))
    # RDS Multi-AZ create (~40 min at worst) and the image build come before the ECS rollout.
    assert job["timeout-minutes"] >= rollout_minutes + 60
    assert int(credentials["with"]["role-duration-seconds"]) >= job["timeout-minutes"] * 60


def test_dev_and_prod_containers_run_the_same_mlflow_command(prod_run, dev_run):
    """Same entrypoint, server and options with the same values, except the ones that must differ."""
    prod_argv = container(prod_run)["entryPoint"] + container(prod_run)["command"]
    containers = [r.plain for r in dev_run.of_type("docker:index/container:Container")]
    dev_argvs = [(c.get("entrypoints") or []) + (c.get("command") or []) for c in containers]
    (dev_argv,) = [a for a in dev_argvs if a[3:5] == ["mlflow", "server"]]
    assert dev_argv[:5] == prod_argv[:5] == ["python", "-m", "mlflow_boot", "mlflow", "server"]

    def is_flag(arg: str) -> bool:
        return arg.startswith("--") and " " not in arg

    def options(argv: list[str]) -> dict[str, str | None]:
        """--flag -> its value (None for a switch); a value may itself start with '--' (uvicorn opts)."""
        found, rest = {}, argv[5:]
        for index, arg in enumerate(rest):
            if is_flag(arg) and not (index and rest[index - 1] == "--uvicorn-opts"):
                nxt = rest[index + 1] if index + 1 < len(rest) else None
                found[arg] = None if nxt is None or is_flag(nxt) else nxt
        return found

    dev_options, prod_options = options(dev_argv), options(prod_argv)
    # Allowed to differ: where the bucket is, which hosts and origins clients use (a plain-HTTP
    # dev proxy adds no origin: loopback ones always pass), the load balancer's keep-alive, and
    # prod's auth app. Everything else is the same flag with the same value.
    differ = {"--artifacts-destination", "--allowed-hosts", "--cors-allowed-origins", "--uvicorn-opts", "--app-name"}
    assert set(dev_options) | {"--app-name", "--cors-allowed-origins"} == set(prod_options)
    assert {k: v for k, v in dev_options.items() if k not in differ} == {
        k: v for k, v in prod_options.items() if k not in differ
    }
    dev_uvicorn, prod_uvicorn = dev_options["--uvicorn-opts"].split(), prod_options["--uvicorn-opts"].split()
    assert dev_uvicorn[:-1] == prod_uvicorn[:-1]  # the same loop and HTTP parser; keep-alive differs


def test_the_task_service_and_target_group_are_laid_out_from_the_server_shape(prod_run):
    """Port, health check, scratch dir and entrypoint are known before the stores exist: the
    container (built from the whole spec), the service and the target group agree on them."""
    shape = server_shape()
    c = container(prod_run)
    assert c["entryPoint"] == list(shape.entrypoint)
    assert c["portMappings"][0]["containerPort"] == shape.port
    assert c["healthCheck"]["command"] == shape.health.test
    assert c["mountPoints"][0]["containerPath"] == shape.scratch_dir
    service = prod_run.exactly("aws:ecs/service:Service", "mlflow-prod").plain
    assert service["loadBalancers"][0]["containerPort"] == shape.port
    assert (
        service["healthCheckGracePeriodSeconds"]
        == health_grace_seconds(shape.health)
        > shape.health.start_period_seconds
    )
    target_group = prod_run.one("aws:lb/targetGroup:TargetGroup").plain
    assert target_group["port"] == shape.port and target_group["healthCheck"]["path"] == shape.health_path
    assert target_group["healthCheck"]["interval"] == shape.health.interval_seconds


def test_the_service_starts_tasks_only_once_their_stores_exist(prod_run):
    service = prod_run.exactly("aws:ecs/service:Service", "mlflow-prod")
    # The database: its proxy's target (registered on the instance), so the proxy has a database.
    assert prod_run.depends_on(service, prod_run.one("aws:rds/proxyTarget:ProxyTarget"))
    assert prod_run.depends_on(service, prod_run.one(BUCKET, "artifacts"))


def test_the_container_definition_takes_every_secret_by_reference_and_refuses_a_plain_one():
    settings = prod_settings()
    spec = server_spec(settings, server_shape(), rds_endpoint(settings.database, "db.example"),
                       ArtifactEndpoint(bucket="artifacts", region=REGION), QUEUE)  # fmt: skip
    where = EcsSecret(arn=f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:s-AbCdEf", key="k", version_id="v1")
    secrets = dict.fromkeys(spec.secret_env, where)
    built = container_definition(spec, image="image@sha256:00", secrets=secrets, log_group="group", region=REGION)
    assert [s["name"] for s in built["secrets"]] == sorted(spec.secret_env)
    assert {s["valueFrom"] for s in built["secrets"]} == {f"{where.arn}:k::v1"}
    del secrets[contract.DB_PASSWORD]
    with pytest.raises(ValueError, match=f"no ECS secret for {contract.DB_PASSWORD}"):
        container_definition(spec, image="image@sha256:00", secrets=secrets, log_group="group", region=REGION)
    leaky = replace(spec, env={**spec.env, contract.DB_PASSWORD: "plain"})
    with pytest.raises(SecretLeakError):
        container_definition(leaky, image="image@sha256:00", secrets=dict.fromkeys(spec.secret_env, where),
                             log_group="group", region=REGION)  # fmt: skip


def test_workspaces_on_prod_run_every_task_with_them_and_nothing_else_changes(prod_run):
    on = container(run_prod(tracking={**prod_section("tracking"), "workspaces": True}))
    off = container(prod_run)
    assert "--enable-workspaces" not in off["command"]
    assert on["command"] == [*off["command"], "--enable-workspaces"]
    assert on["environment"] == off["environment"] and on["secrets"] == off["secrets"]
