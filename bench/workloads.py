"""What the benches ask of a tracking server, through the real `mlflow` client: concurrent calls
(each client a thread, like concurrent training jobs) and artifact transfers.

The client must already point at the server (testkit.mlflow_client.pointed_at). Every loop is
bounded by a duration and a call count."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

MB = 1024 * 1024
# log_batch takes at most 1000 metrics per call (MLflow's limit).
BATCH_LIMIT = 1000


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of an already sorted list."""
    if not sorted_values:
        return float("nan")
    index = max(0, min(len(sorted_values) - 1, round(q / 100 * len(sorted_values) + 0.5) - 1))
    return sorted_values[index]


@dataclass
class Calls:
    """What one cell measured: each successful call's latency, and every failure's first line."""

    seconds: float
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)

    @property
    def per_second(self) -> float:
        return len(self.latencies) / self.seconds if self.seconds else 0.0

    def p(self, q: float) -> float:
        return percentile(sorted(self.latencies), q) * 1000


def drive(clients: int, duration: float, max_calls: int, call: Callable[[int, int], None]) -> Calls:
    """`clients` threads call `call(client_index, step)` for `duration` seconds (at most `max_calls`
    each), all released at once; failures are counted, not hidden in the averages."""
    latencies: list[list[float]] = [[] for _ in range(clients)]
    errors: list[str] = []
    gate = threading.Barrier(clients + 1)
    stop_at = [0.0]

    def worker(index: int) -> None:
        mine = latencies[index]
        gate.wait()
        step = 0
        while step < max_calls and time.perf_counter() < stop_at[0]:
            began = time.perf_counter()
            try:
                call(index, step)
                mine.append(time.perf_counter() - began)
            except Exception as error:
                errors.append(f"{type(error).__name__}: {str(error).splitlines()[0][:200] if str(error) else ''}")
            step += 1

    threads = [threading.Thread(target=worker, args=(i,), daemon=True) for i in range(clients)]
    for thread in threads:
        thread.start()
    stop_at[0] = time.perf_counter() + duration
    began = time.perf_counter()
    gate.wait()
    for thread in threads:
        # A call in flight at the deadline finishes; a stuck one is cut off after two minutes.
        thread.join(duration + 120)
    return Calls(time.perf_counter() - began, [x for mine in latencies for x in mine], errors)


def new_runs(experiment_id: str, count: int, name: str) -> list[str]:
    from mlflow import MlflowClient

    client = MlflowClient()
    return [client.create_run(experiment_id, run_name=f"{name}-{i}").info.run_id for i in range(count)]


def log_metric_call(run_ids: list[str]) -> Callable[[int, int], None]:
    from mlflow import MlflowClient

    client = MlflowClient()

    def call(index: int, step: int) -> None:
        client.log_metric(run_ids[index], "loss", 1.0 / (step + 1), timestamp=int(time.time() * 1000), step=step)

    return call


def log_batch_call(run_ids: list[str], metrics: int = 100) -> Callable[[int, int], None]:
    from mlflow import MlflowClient
    from mlflow.entities import Metric

    client = MlflowClient()

    def call(index: int, step: int) -> None:
        now_ms = int(time.time() * 1000)
        client.log_batch(
            run_ids[index], metrics=[Metric(f"m{k}", float(k + step), now_ms, step) for k in range(metrics)]
        )

    return call


def seed_search(experiment_id: str, runs: int) -> None:
    """`runs` runs with a `score` metric, a param and a tag each: what search_runs sorts and returns."""
    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param, RunTag

    client = MlflowClient()
    now_ms = int(time.time() * 1000)
    for index, run_id in enumerate(new_runs(experiment_id, runs, "search")):
        client.log_batch(
            run_id,
            metrics=[Metric("score", (index * 7919) % runs / runs, now_ms, 0)],
            params=[Param("index", str(index))],
            tags=[RunTag("bench", "search")],
        )


def search_runs_call(experiment_id: str, max_results: int = 100) -> Callable[[int, int], None]:
    from mlflow import MlflowClient

    client = MlflowClient()

    def call(index: int, step: int) -> None:
        found = client.search_runs([experiment_id], order_by=["metrics.score DESC"], max_results=max_results)
        if len(found) != max_results:
            raise RuntimeError(f"search_runs returned {len(found)} runs, not {max_results}")

    return call


def seed_history(experiment_id: str, points: int) -> str:
    """One run with a `curve` metric of `points` steps, logged in batches of the most MLflow takes."""
    from mlflow import MlflowClient
    from mlflow.entities import Metric

    client = MlflowClient()
    run_id = new_runs(experiment_id, 1, "history")[0]
    now_ms = int(time.time() * 1000)
    for start in range(0, points, BATCH_LIMIT):
        steps = range(start, min(points, start + BATCH_LIMIT))
        client.log_batch(run_id, metrics=[Metric("curve", 1.0 / (s + 1), now_ms + s, s) for s in steps])
    return run_id


def metric_history_call(run_id: str, points: int) -> Callable[[int, int], None]:
    from mlflow import MlflowClient

    client = MlflowClient()

    def call(index: int, step: int) -> None:
        got = client.get_metric_history(run_id, "curve")
        if len(got) != points:
            raise RuntimeError(f"get_metric_history returned {len(got)} points, not {points}")

    return call


def write_random_file(path: Path, size: int) -> None:
    """Random bytes: nothing on the way can compress them."""
    with open(path, "wb") as handle:
        left = size
        while left:
            chunk = os.urandom(min(left, 8 * MB))
            handle.write(chunk)
            left -= len(chunk)


def upload(run_id: str, path: Path) -> float:
    from mlflow import MlflowClient

    began = time.perf_counter()
    MlflowClient().log_artifact(run_id, str(path))
    return time.perf_counter() - began


def download(run_id: str, name: str, size: int, target: Path) -> float:
    import mlflow

    began = time.perf_counter()
    got = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path=name, dst_path=str(target))
    elapsed = time.perf_counter() - began
    if os.path.getsize(got) != size:
        raise RuntimeError(f"downloaded {os.path.getsize(got)} bytes, expected {size}")
    os.unlink(got)
    return elapsed
