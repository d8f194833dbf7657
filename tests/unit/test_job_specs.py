"""Server jobs in the specs and the config: the Redis spec, the MLflow spec's job settings, the one
periodic-task owner, the queue URL, and the task memory they need (components/sizes.py)."""

from __future__ import annotations

import re

import pytest

from components.config import parse_settings
from components.sizes import SERVER_PSS_MIB, server_memory_mib
from components.specs.endpoints import DatabaseEndpoint, JobQueueEndpoint, private_s3_endpoint
from components.specs.mlflow_server import jobs_enabled, mlflow_server_spec, periodic_tasks_owner
from components.specs.redis import CONFIG_PATH, redis_spec
from components.versions import REDIS_IMAGE, VALKEY_VERSION
from images.mlflow import server_contract as contract
from tests.unit.test_config_aws import problems, with_

DB = DatabaseEndpoint(host="postgres", port=5432, name="mlflow", user="mlflow_server")
MINIO = private_s3_endpoint("mlflow", "us-east-1", "minio", 9000)
QUEUE = JobQueueEndpoint("redis", 6379)
PASSWORD = "Abc123xyz0Abc123xyz0Abc123xyz012"


def tracking(**changes):
    return parse_settings({"target": "docker", "tracking": changes}).tracking


def flag(command, name):
    return command[command.index(name) + 1]


def test_jobs_are_on_by_default_with_any_number_of_replicas():
    assert tracking().job_execution is True
    # The single-replica rule went with the shared queue.
    assert tracking(replicas=3).semantic_problems() == []


def test_a_spec_with_jobs_needs_the_shared_queue():
    with pytest.raises(ValueError, match="shared job queue"):
        mlflow_server_spec(tracking(), DB, MINIO)


def test_jobs_on_every_server_consumes_the_queue_and_none_schedules_periodic_tasks():
    spec = mlflow_server_spec(tracking(), DB, MINIO, job_queue=QUEUE, listen_host="0.0.0.0", port=5000)
    assert jobs_enabled(spec)
    assert spec.env[contract.JOB_EXECUTION] == "true"
    # MLflow's default for an unset flag is true: every server says false, but the owner.
    assert spec.env[contract.JOB_PERIODIC_TASKS] == "false"
    assert contract.JOB_REDIS_URL in spec.secret_env and contract.JOB_REDIS_URL not in spec.env
    assert contract.JOB_REDIS_URL in contract.SECRET_NAMES
    # MLflow points its job processes at http://<--host>:<--port>: that Host must pass the check.
    assert flag(spec.command, "--allowed-hosts").split(",")[-1] == "0.0.0.0:5000"


def test_the_periodic_task_owner_differs_in_its_periodic_settings_only():
    spec = mlflow_server_spec(tracking(), DB, MINIO, job_queue=QUEUE)
    owner = periodic_tasks_owner(spec)
    assert owner.env[contract.JOB_PERIODIC_TASKS] == "true"
    # It alone clears the periodic locks a killed owner left (no expiry, kept by MLflow with Redis).
    assert owner.env[contract.JOB_FLUSH_PERIODIC_LOCKS] == "true" and contract.JOB_FLUSH_PERIODIC_LOCKS not in spec.env
    periodic = {contract.JOB_PERIODIC_TASKS, contract.JOB_FLUSH_PERIODIC_LOCKS}
    assert {k: v for k, v in owner.env.items() if k not in periodic} == {
        k: v for k, v in spec.env.items() if k not in periodic
    }
    assert (owner.command, owner.secret_env, owner.health) == (spec.command, spec.secret_env, spec.health)


def test_jobs_off_no_queue_no_secret_and_no_periodic_owner():
    spec = mlflow_server_spec(tracking(jobExecution=False), DB, MINIO)
    assert spec.env[contract.JOB_EXECUTION] == "false"
    assert contract.JOB_PERIODIC_TASKS not in spec.env and contract.JOB_REDIS_URL not in spec.secret_env
    assert "0.0.0.0:5000" not in flag(spec.command, "--allowed-hosts")
    with pytest.raises(ValueError, match="job runner"):
        periodic_tasks_owner(spec)


def test_the_queue_url_carries_the_password_and_tls_scheme():
    assert QUEUE.url(PASSWORD) == f"redis://:{PASSWORD}@redis:6379/0"
    assert (
        JobQueueEndpoint("master.x.cache.amazonaws.com", 6379, tls=True)
        .url("a/b@c")
        .startswith("rediss://:a%2Fb%40c@master.x.cache.amazonaws.com:6379/")
    )


def test_the_redis_password_is_in_its_config_file_never_in_argv_or_health_check():
    spec = redis_spec()
    assert spec.image == REDIS_IMAGE and not REDIS_IMAGE.endswith(":latest")
    assert spec.command == ("redis-server", CONFIG_PATH)
    text = spec.config_text(PASSWORD)
    assert f"requirepass {PASSWORD}" in text.splitlines()
    assert PASSWORD not in " ".join(spec.command) and PASSWORD not in " ".join(spec.health.command)
    # The health check signs in with the config file's password, through the environment.
    assert "REDISCLI_AUTH=" in spec.health.command[0] and CONFIG_PATH in spec.health.command[0]
    assert spec.health.kind == "CMD-SHELL"


def test_the_queue_is_persisted_and_never_evicted():
    lines = redis_spec().config_text(PASSWORD).splitlines()
    assert {"appendonly yes", "appendfsync everysec", "maxmemory-policy noeviction", "dir /data"} <= set(lines)


def test_a_password_redis_conf_cannot_hold_unquoted_is_refused():
    with pytest.raises(ValueError, match="letters and digits"):
        redis_spec().config_text("pass word")


def test_valkey_version_is_written_as_the_provider_reads_it_back():
    assert re.fullmatch(r"[7-9]\.\d+", VALKEY_VERSION)


def test_the_task_must_hold_a_server_with_its_job_workers():
    assert SERVER_PSS_MIB[True] > SERVER_PSS_MIB[False]
    found = problems(with_(tasks={"cpu": 512, "memoryMib": 2048}))
    assert "tasks.memoryMib" in found and str(server_memory_mib(True)) in found["tasks.memoryMib"]
    # Without jobs the same task is enough.
    parse_settings(with_(tasks={"cpu": 512, "memoryMib": 2048}, tracking={"jobExecution": False}))
