"""MLflow's server jobs across two replicas on one Redis queue (tracking.jobExecution, on by default).

One topology: Debian's redis-server from the dev stack's Redis spec, two MLflow servers from the
same spec (the first one owning the periodic tasks, as the dev stack's mlflow-0), nginx in front.
Real jobs go through the proxy with the stack's credentials: MLflow's `invoke_scorer` with the
built-in RegexMatch scorer, which needs no model. Each is run exactly once (one assessment on
its trace; a second run would log a second one), and both replicas answer with its result.
The periodic tasks are queued by one server only: its process tree alone has the periodic
consumer, and Redis saw exactly one push per periodic task MLflow registers (two servers
scheduling would push each twice).

Cost: one topology start with two servers and their job consumers: 100-130 s measured on 2 cores
at load average 8 (setup ~53 s, periodic check ~26 s as the consumers start, jobs ~21 s).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import time
import urllib.request
from pathlib import Path

import mlflow
import pytest
from huey import MemoryHuey
from mlflow.genai.scorers import RegexMatch
from mlflow.server.jobs.utils import HUEY_PERIODIC_TASKS_INSTANCE_KEY, register_periodic_tasks

from testkit.processes import _descendants
from tests.e2e.conftest import IN_CI, require_nginx, start_topology, stop_topology

JOBS = 4
# Each consumer is `python -m huey.bin.huey_consumer <module>.huey_instance`.
PERIODIC_CONSUMER = "mlflow.server.jobs._periodic_tasks_consumer.huey_instance"
JOB_CONSUMER = "mlflow.server.jobs._huey_consumer.huey_instance"
# Huey's Redis storage names the list of a queue `huey.redis.<name>` (huey/storage.py, RedisStorage).
PERIODIC_QUEUE = f"huey.redis.{HUEY_PERIODIC_TASKS_INSTANCE_KEY}"
WAIT_SECONDS = 60


def cmdlines(pid: int) -> list[str]:
    """The command lines of a server's process tree (the server, its workers, the job runner...)."""
    found = []
    for child in [pid, *_descendants(pid)]:
        try:
            found.append(Path(f"/proc/{child}/cmdline").read_bytes().replace(b"\0", b" ").decode())
        except OSError:
            continue
    return found


def consumers(topo, module: str) -> list[int]:
    """How many consumers of `module` each server runs."""
    return [sum(module in line for line in cmdlines(inst.process.pid)) for inst in topo.instances]


def periodic_task_count() -> int:
    """How many periodic tasks MLflow registers (read from MLflow itself, with the servers' env:
    SQL trace rollups off, so no rollup task)."""
    huey = MemoryHuey()
    register_periodic_tasks(huey)
    return len(huey._registry._periodic_tasks)


def commandstat(topo, command: str) -> int:
    """How many times Redis ran `command` since it started (INFO commandstats)."""
    for line in topo.redis_cli("INFO", "commandstats").splitlines():
        if line.startswith(f"cmdstat_{command}:"):
            return int(line.split("calls=", 1)[1].split(",", 1)[0])
    return 0


def request(url: str, *, method: str = "GET", body: dict | None = None, credentials=None) -> dict:
    headers = {"Content-Type": "application/json"}
    if credentials:
        headers["Authorization"] = "Basic " + base64.b64encode(":".join(credentials).encode()).decode()
    data = json.dumps(body).encode() if body is not None else None
    with urllib.request.urlopen(
        urllib.request.Request(url, data=data, headers=headers, method=method), timeout=30
    ) as r:
        return json.load(r)


def wait_for(condition, what: str, topo, timeout: float = WAIT_SECONDS):
    deadline = time.monotonic() + timeout
    while not (value := condition()):
        if time.monotonic() > deadline:
            pytest.fail(f"{what} within {timeout}s\n{topo.log_report()}")
        time.sleep(0.5)
    return value


@pytest.fixture(scope="module")
def jobs_topology(server_venv):
    require_nginx()
    if shutil.which("redis-server") is None:
        message = "redis-server is not installed (Debian: apt-get install redis-server)"
        if IN_CI:
            pytest.fail(f"{message}; CI must not skip the server jobs end-to-end test")
        pytest.skip(message)
    topo = start_topology(settings={"tracking": {"replicas": 2}}, jobs=True)
    try:
        # Every server's job runner starts a consumer per job function MLflow ships.
        wait_for(lambda: min(consumers(topo, JOB_CONSUMER)) > 0, "each server runs its job consumers", topo)
        yield topo
    finally:
        stop_topology(topo)


def test_the_periodic_tasks_are_scheduled_by_one_server_once(jobs_topology):
    topo = jobs_topology
    assert [inst.spec.env["MLFLOW_SERVER_JOB_ENABLE_PERIODIC_TASKS"] for inst in topo.instances] == ["true", "false"]
    assert consumers(topo, PERIODIC_CONSUMER) == [1, 0]
    # A consumer queues its periodic tasks as it starts (huey/consumer.py: Scheduler), then every
    # minute: by now the owner has queued each once and the other server none.
    expected = periodic_task_count()
    assert expected >= 1
    wait_for(lambda: commandstat(topo, "lpush") >= expected, "the periodic tasks were queued", topo)
    time.sleep(3)  # a second scheduler, had one started, would have pushed by now too
    assert commandstat(topo, "lpush") == expected
    assert topo.redis_cli("LLEN", PERIODIC_QUEUE).strip() == "0"  # and the owner ran them


def test_jobs_run_once_and_both_replicas_answer_with_their_result(jobs_topology):
    topo = jobs_topology
    pushes_before = commandstat(topo, "lpush")
    with topo.tracking_env():
        experiment_id = mlflow.create_experiment(f"server-jobs-{os.getpid()}")
        mlflow.set_experiment(experiment_id=experiment_id)
        trace_ids = []
        for index in range(JOBS):
            with mlflow.start_span(name=f"answer-{index}") as span:
                span.set_inputs({"question": index})
                span.set_outputs(f"Answer: {index}" if index % 2 == 0 else f"no idea ({index})")
            trace_ids.append(span.trace_id)
        mlflow.flush_trace_async_logging()
    scorer = json.dumps(RegexMatch(pattern="^Answer:").model_dump())
    jobs = [
        request(
            f"{topo.tracking_uri}/ajax-api/3.0/jobs/",
            method="POST",
            body={
                "job_name": "invoke_scorer",
                "params": {"experiment_id": experiment_id, "serialized_scorer": scorer, "trace_ids": [trace_id]},
            },
            credentials=topo.credentials,
        )  # fmt: skip
        for trace_id in trace_ids
    ]
    # Each submission was queued once, in the one shared queue.
    assert commandstat(topo, "lpush") - pushes_before == JOBS

    def finished(job_id: str, server: str) -> dict | None:
        job = request(f"{server}/ajax-api/3.0/jobs/{job_id}")
        return job if job["status"] in ("SUCCEEDED", "FAILED", "CANCELED", "TIMEOUT") else None

    for job, trace_id, index in zip(jobs, trace_ids, range(JOBS), strict=True):
        answers = [
            wait_for(lambda s=inst.url, j=job["job_id"]: finished(j, s), f"job {job['job_id']} finished", topo)
            for inst in topo.instances
        ]
        # The same row, whichever server answers: succeeded at the first attempt.
        assert answers[0] == answers[1], answers
        assert (answers[0]["status"], answers[0]["retry_count"]) == ("SUCCEEDED", 0), answers[0]
        result = answers[0]["result"][trace_id]
        assert result["failures"] == []
        assert [a["feedback"]["value"] for a in result["assessments"]] == ["yes" if index % 2 == 0 else "no"]
        # Run once: one assessment on the trace, read back through each server.
        for inst in topo.instances:
            client = mlflow.MlflowClient(tracking_uri=inst.url)
            assessments = client.get_trace(trace_id).info.assessments
            assert [a.name for a in assessments] == ["regex_match"], (inst.name, assessments)
    assert topo.redis_cli("LLEN", "huey.redis.invoke_scorer").strip() == "0"
