"""The dev stack's job queue (components/docker/job_queue.py): Redis for MLflow's server jobs, its
password a file, its data kept; the servers get its URL as a file, mlflow-0 owns the periodic tasks."""

from __future__ import annotations

import json

from components.specs.durations import go_duration
from components.specs.redis import CONFIG_PATH, redis_spec
from components.versions import REDIS_IMAGE
from images.mlflow import server_contract as contract
from tests.mocks.docker_finders import CONTAINER, PASSWORD, REDIS, children, containers, generated_value
from tests.pulumi_mocks import is_secret, reveal, run_program, stack_config

JOB_QUEUE = "mlflow-platform:docker:JobQueue"


def password(run) -> str:
    (resource,) = [r for r in children(run, JOB_QUEUE) if r.typ == PASSWORD]
    assert resource.inputs["special"] is False
    return generated_value(resource)


def env_of(container) -> dict[str, str]:
    return dict(e.split("=", 1) for e in container.inputs["envs"])


def test_redis_runs_the_pinned_image_with_its_config_file_as_a_secret_upload(dev_run):
    redis = containers(dev_run)[REDIS].inputs
    image = dev_run.one("docker:index/remoteImage:RemoteImage", "job-queue").inputs
    assert image["name"] == REDIS_IMAGE and image["keepLocally"] is True
    assert redis["name"] == "mlflow-dev-redis" and redis["command"] == ["redis-server", CONFIG_PATH]
    assert redis["envs"] == []
    (upload,) = redis["uploads"] if not is_secret(redis["uploads"]) else reveal(redis["uploads"])
    assert is_secret(upload["content"]) or is_secret(redis["uploads"])
    plain = reveal(upload)
    # The image's redis user (uid 999) alone reads it; it holds the password.
    assert (plain["file"], plain["permissions"], plain["owner"], plain["group"]) == (CONFIG_PATH, "0400", "999", "999")
    assert plain["content"] == redis_spec().config_text(password(dev_run))
    # Nowhere else: not in the command, the env, the health check or any output.
    visible = json.dumps([redis["command"], redis["envs"], redis["healthcheck"], dev_run.outputs])
    assert password(dev_run) not in visible


def test_redis_is_private_health_gated_and_keeps_its_data(dev_run):
    redis = containers(dev_run)[REDIS].inputs
    assert not redis.get("ports")
    (network,) = redis["networksAdvanced"]
    backend = dev_run.one("docker:index/network:Network", "backend").inputs
    assert network["name"] == backend["name"] and backend["internal"] is True and network["aliases"] == ["redis"]
    health = redis["healthcheck"]
    spec = redis_spec()
    assert health["tests"] == spec.health.test and health["interval"] == go_duration(spec.health.interval_seconds)
    assert redis["wait"] is True
    (volume,) = [r for r in children(dev_run, JOB_QUEUE) if r.typ == "docker:index/volume:Volume"]
    assert volume.inputs["name"] == "mlflow-dev-redis-data" and volume.retain_on_delete
    assert redis["volumes"] == [{"volumeName": "mlflow-dev-redis-data", "containerPath": "/data"}]


def test_every_server_gets_the_url_as_a_file_and_waits_for_redis():
    config = stack_config("dev")
    config["mlflow-platform:tracking"] = json.dumps({**json.loads(config.get("mlflow-platform:tracking", "{}")),
                                                     "replicas": 2})  # fmt: skip
    run = run_program(config, stack="dev")
    redis = containers(run)[REDIS]
    servers = [containers(run)[f"tracking-server-mlflow-{i}"] for i in range(2)]
    url = f"redis://:{password(run)}@redis:6379/0"
    for server in servers:
        env = env_of(server)
        assert env[contract.JOB_EXECUTION] == "true"
        assert env[f"{contract.JOB_REDIS_URL}_FILE"] == "/run/secrets/mlflow_server_job_huey_redis_url"
        assert contract.JOB_REDIS_URL not in env
        files = {u["file"]: u for u in reveal(server.inputs["uploads"])}
        assert files[env[f"{contract.JOB_REDIS_URL}_FILE"]]["content"] == url
        assert url not in json.dumps([server.inputs["envs"], server.inputs["command"]])
        assert run.depends_on(server, redis)
    # The first server alone schedules MLflow's periodic tasks.
    assert [env_of(s)[contract.JOB_PERIODIC_TASKS] for s in servers] == ["true", "false"]


def test_without_jobs_there_is_no_redis_and_the_servers_run_no_job_runner():
    config = stack_config("dev")
    config["mlflow-platform:tracking"] = json.dumps({"jobExecution": False})
    run = run_program(config, stack="dev")
    assert REDIS not in containers(run) and not run.of_type(JOB_QUEUE)
    env = env_of(containers(run)["tracking-server-mlflow-0"])
    assert env[contract.JOB_EXECUTION] == "false"
    assert contract.JOB_PERIODIC_TASKS not in env and f"{contract.JOB_REDIS_URL}_FILE" not in env
    assert len([c for c in run.of_type(CONTAINER)]) == 4
