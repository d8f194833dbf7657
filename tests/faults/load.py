"""Writer threads through the real mlflow client, and what they prove afterwards.

Each thread logs one metric to a run of its own, step n with value n, and records every call the
client reports as successful (after its own retries) with the moment it returned. Reading each
history back then shows what an acknowledged write became: stored once (fine), missing (lost) or
stored twice (a duplicate: a retried request the server had already committed).
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

from mlflow import MlflowClient

KEY = "load"


@dataclass
class Writer:
    run_id: str
    acked: list[tuple[int, float]] = field(default_factory=list)  # (step, monotonic time of the ack)
    errors: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Outcome:
    acked: int
    lost: int
    duplicates: int
    client_errors: int
    # The longest time no write was acknowledged, from the fault until writes succeeded again.
    recovery_seconds: float

    def row(self, fault: str) -> dict:
        return {"fault": fault, **self.__dict__}


class WriterLoad:
    """`threads` writers on runs of `experiment_id`; start(), then stop() and outcome()."""

    def __init__(self, experiment_id: str, threads: int = 4) -> None:
        self.client = MlflowClient()
        self.writers = [Writer(self.client.create_run(experiment_id).info.run_id) for _ in range(threads)]
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._write, args=(w,), daemon=True) for w in self.writers]

    def _write(self, writer: Writer) -> None:
        step = 0
        while not self._stop.is_set():
            try:
                self.client.log_metric(writer.run_id, KEY, float(step), step=step)
                writer.acked.append((step, time.monotonic()))
            except Exception as error:  # what the client gave up on: counted, never hidden
                writer.errors.append(f"step {step}: {type(error).__name__}: {str(error)[:200]}")
            step += 1

    def start(self) -> WriterLoad:
        for thread in self._threads:
            thread.start()
        return self

    def acked_count(self) -> int:
        return sum(len(w.acked) for w in self.writers)

    def wait_for_acks(self, more: int, timeout: float = 60.0) -> None:
        """Until `more` further writes were acknowledged (the load runs, or runs again)."""
        target = self.acked_count() + more
        deadline = time.monotonic() + timeout
        while self.acked_count() < target:
            if time.monotonic() >= deadline:
                raise AssertionError(f"writes did not resume within {timeout}s: {self.errors()[-5:]}")
            time.sleep(0.02)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=300)
            assert not thread.is_alive(), "a writer is stuck in a call"

    def errors(self) -> list[str]:
        return [e for w in self.writers for e in w.errors]

    def outcome(self, fault_at: float) -> Outcome:
        lost = duplicates = 0
        for writer in self.writers:
            stored = Counter((m.step, m.value) for m in self.client.get_metric_history(writer.run_id, KEY))
            lost += sum(1 for step, _ in writer.acked if stored[(step, float(step))] == 0)
            duplicates += sum(count - 1 for count in stored.values() if count > 1)
        times = sorted(t for w in self.writers for _, t in w.acked)
        before = [t for t in times if t <= fault_at]
        after = [t for t in times if t > fault_at]
        assert before and after, "the load must run on both sides of the fault"
        recovery = after[0] - fault_at
        # Any later stall of all writers (e.g. the restart after a stop) counts too.
        gaps = [b - a for a, b in itertools.pairwise(after)]
        recovery = max([recovery, *gaps])
        return Outcome(self.acked_count(), lost, duplicates, len(self.errors()), round(recovery, 2))
