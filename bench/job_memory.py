"""Memory of one MLflow server's process tree with MLflow's server jobs on and off (docs/operations.md,
components/sizes.py). Starts the e2e topology (one server, the stack's default workers) twice:
jobs off, then jobs on with its Redis; once the job consumers run, sums RSS and PSS (PSS shares
pages counted once among the processes that map them) over the server's process tree.

    MLFLOW_SERVER_VENV=... python -m bench.job_memory
"""

from __future__ import annotations

import time
from pathlib import Path

from testkit.processes import _descendants
from testkit.topology import DevTopology

SETTLE_SECONDS = 15
JOB_CONSUMER = "mlflow.server.jobs._huey_consumer.huey_instance"


def tree_memory(pid: int) -> tuple[int, int, int]:
    """(processes, RSS MiB, PSS MiB) of `pid` and its descendants."""
    rss = pss = count = 0
    for child in [pid, *_descendants(pid)]:
        try:
            rollup = Path(f"/proc/{child}/smaps_rollup").read_text()
        except OSError:
            continue
        fields = {line.split(":")[0]: int(line.split()[1]) for line in rollup.splitlines()[1:] if line.endswith("kB")}
        rss, pss, count = rss + fields.get("Rss", 0), pss + fields.get("Pss", 0), count + 1
    return count, rss // 1024, pss // 1024


def measure(jobs: bool) -> tuple[int, int, int]:
    with DevTopology({"tracking": {"replicas": 1}}, nginx=False, jobs=jobs) as topo:
        pid = topo.instances[0].process.pid
        deadline = time.monotonic() + 120
        while jobs and not any(
            JOB_CONSUMER in Path(f"/proc/{p}/cmdline").read_text(errors="replace").replace("\0", " ")
            for p in _descendants(pid)
            if Path(f"/proc/{p}/cmdline").exists()
        ):
            if time.monotonic() > deadline:
                raise RuntimeError("no job consumer started")
            time.sleep(1)
        time.sleep(SETTLE_SECONDS)
        return tree_memory(pid)


def main() -> None:
    for jobs in (False, True):
        count, rss, pss = measure(jobs)
        print(f"jobs {'on ' if jobs else 'off'}: {count} processes, RSS {rss} MiB, PSS {pss} MiB")


if __name__ == "__main__":
    main()
