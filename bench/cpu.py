"""CPU seconds of process trees, from /proc through psutil: where a bench cell's time went."""

from __future__ import annotations

from collections.abc import Mapping

import psutil


def _tree(pid: int) -> list[psutil.Process]:
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def _seconds(process: psutil.Process) -> float:
    try:
        times = process.cpu_times()
    except psutil.NoSuchProcess:  # exited between the listing and the read
        return 0.0
    return times.user + times.system


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds of `pid` and its live descendants (e.g. nginx's master and workers)."""
    return sum(_seconds(process) for process in _tree(pid))


def per_process_cpu_seconds(pid: int) -> dict[int, float]:
    """CPU seconds of each process of the tree, by PID: how evenly a server's workers share the work."""
    return {process.pid: _seconds(process) for process in _tree(pid)}


class CpuMeter:
    """CPU seconds spent by named process trees between start() and stop().

    `groups` maps a name ("nginx", "mlflow", ...) to the root PIDs of its trees. `split` names the
    groups whose processes are also reported one by one (a server's workers); `alone`, the groups
    counted without their descendants (the bench's own process, whose children are the servers)."""

    def __init__(
        self, groups: Mapping[str, list[int]], split: tuple[str, ...] = (), alone: tuple[str, ...] = ()
    ) -> None:
        self.groups = {name: list(pids) for name, pids in groups.items()}
        self.split = split
        self.alone = alone
        self._before: dict[str, dict[int, float]] = {}

    def _sample(self) -> dict[str, dict[int, float]]:
        sample: dict[str, dict[int, float]] = {}
        for name, roots in self.groups.items():
            seconds: dict[int, float] = {}
            for pid in roots:
                if name in self.alone:
                    seconds.update({pid: _seconds(psutil.Process(pid))})
                else:
                    seconds.update(per_process_cpu_seconds(pid))
            sample[name] = seconds
        return sample

    def start(self) -> None:
        self._before = self._sample()

    def stop(self) -> tuple[dict[str, float], dict[str, list[float]]]:
        """(CPU seconds per group, and per process, largest first, for the split groups). A process
        that started during the cell counts from zero; one that exited is not counted."""
        after = self._sample()
        totals: dict[str, float] = {}
        spread: dict[str, list[float]] = {}
        for name, seconds in after.items():
            before = self._before.get(name, {})
            deltas = {pid: value - before.get(pid, 0.0) for pid, value in seconds.items()}
            totals[name] = sum(deltas.values())
            if name in self.split:
                spread[name] = sorted((d for d in deltas.values() if d >= 0.05), reverse=True)
        return totals, spread
