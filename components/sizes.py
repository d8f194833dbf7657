"""Byte sizes as users write them ("10g", "512m", "1.5G") and as nginx wants them."""

from __future__ import annotations

import re

_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*$", re.IGNORECASE)


def parse_size(value: str | int) -> int:
    """Parse a size into bytes. Units are binary (k = 1024), as in nginx."""
    if isinstance(value, bool):
        raise ValueError("expected a size like '10g', not a boolean")
    if isinstance(value, int):
        if value < 0:
            raise ValueError("a size cannot be negative")
        return value
    match = _SIZE.match(str(value))
    if not match:
        raise ValueError(f"'{value}' is not a size; use a number with an optional unit k, m, g or t (e.g. '10g')")
    number, unit = match.groups()
    size = float(number) * _UNITS[unit.lower()]
    if size != int(size):
        raise ValueError(f"'{value}' is not a whole number of bytes")
    return int(size)


def nginx_size(size_bytes: int) -> str:
    """The shortest exact nginx spelling of a size: 10737418240 -> '10g'."""
    for unit in ("g", "m", "k"):
        factor = _UNITS[unit]
        if size_bytes and size_bytes % factor == 0:
            return f"{size_bytes // factor}{unit}"
    return str(size_bytes)


# One MLflow server's process tree, idle, as bench/job_memory.py measures it in the e2e topology
# (MLflow 3.17.2, the default 2 uvicorn workers, 2026-12-03): PSS, i.e. shared pages counted
# once, which is what a container's memory cgroup is charged. With jobs on, MLflow adds its job
# runner, one Huey consumer per job function (6) and, on the periodic-task owner, one more: 8
# processes. RSS (shared pages counted in each process): 771 MiB off, 2014 MiB on.
SERVER_PSS_MIB = {False: 567, True: 1350}
# What a running job adds on top (each runs in a subprocess that imports MLflow), and request
# spikes: a margin, not a measurement.
JOB_HEADROOM_MIB = 1024


def server_memory_mib(job_execution: bool) -> int:
    """The least memory a server task should have: the measured tree plus the margin."""
    return SERVER_PSS_MIB[job_execution] + JOB_HEADROOM_MIB
