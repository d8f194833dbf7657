"""Our dev topology against the setup it replaces and MLflow's solo default, side by side in one run.

    python bench/compare.py                        # ~15 min: every cell, 2 rounds, 500 MiB transfers
    python bench/compare.py --duration 3 --rounds 1 --artifact-mb 50   # quick look
    python bench/compare.py --setups ours,blog --json out.json

The setups are in bench/setups.py (`ours`, `blog`, `solo`). All three are started first, then every
cell (a call and a client count) runs on each setup in turn, and the whole sequence repeats
`--rounds` times: a change in the machine's load hits every setup alike, and the spread between
rounds says how stable a number is. Each cell records, besides calls/s, p50/p95 and failures, the
CPU seconds of every process tree (nginx, MLflow and each of its workers, PostgreSQL, the S3
server, this client) from /proc, so each number says where its time went. Ratios are to `blog`.
Everything on 127.0.0.1; every loop bounded.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

# Before mlflow builds its cached HTTP session: one pooled connection per client thread.
os.environ.setdefault("MLFLOW_HTTP_POOL_MAXSIZE", "64")
os.environ.setdefault("MLFLOW_HTTP_POOL_CONNECTIONS", "64")
os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")  # keep stdout for the tables

from bench import workloads  # noqa: E402
from bench.cpu import CpuMeter  # noqa: E402
from bench.setups import SETUPS, Ours  # noqa: E402
from testkit.mlflow_client import pointed_at  # noqa: E402

BASELINE = "blog"
GROUPS = ("mlflow", "nginx", "postgres", "s3", "client")


@dataclass
class Cell:
    setup: str
    kind: str
    clients: int
    round: int
    calls: int
    calls_per_s: float
    p50_ms: float
    p95_ms: float
    failed: int
    first_failure: str | None
    cpu: dict[str, float] = field(default_factory=dict)
    workers: list[float] = field(default_factory=list)


@dataclass
class Transfer:
    setup: str
    direction: str
    seconds: list[float] = field(default_factory=list)
    cpu: dict[str, list[float]] = field(default_factory=dict)


class Prepared:
    """A started setup with its experiments and seeded data."""

    def __init__(self, setup, search_runs: int, history_points: int) -> None:
        self.setup = setup
        self.env = setup.client_env()
        with pointed_at(self.env["MLFLOW_TRACKING_URI"], self.env):
            import mlflow

            self.experiment_id = mlflow.create_experiment("bench")
            self.search_experiment_id = mlflow.create_experiment("bench-search")
            workloads.seed_search(self.search_experiment_id, search_runs)
            self.history_run = workloads.seed_history(self.experiment_id, history_points)
            # Warm-up: every worker's store, pool and imports before the first measured cell.
            runs = workloads.new_runs(self.experiment_id, 4, "warm-up")
            workloads.drive(4, 2.0, 100, workloads.log_metric_call(runs))
        self.history_points = history_points

    def meter(self) -> CpuMeter:
        return CpuMeter({**self.setup.cpu_groups(), "client": [os.getpid()]}, split=("mlflow",), alone=("client",))

    def call_for(self, kind: str, clients: int):
        if kind == "log_metric":
            return workloads.log_metric_call(workloads.new_runs(self.experiment_id, clients, f"{kind}-{clients}"))
        if kind == "log_batch":
            return workloads.log_batch_call(workloads.new_runs(self.experiment_id, clients, f"{kind}-{clients}"))
        if kind == "search_runs":
            return workloads.search_runs_call(self.search_experiment_id)
        if kind == "get_metric_history":
            return workloads.metric_history_call(self.history_run, self.history_points)
        raise ValueError(kind)


def run_cell(prepared: Prepared, kind: str, clients: int, duration: float, max_calls: int, round_: int) -> Cell:
    env = prepared.env
    with pointed_at(env["MLFLOW_TRACKING_URI"], env):
        call = prepared.call_for(kind, clients)
        meter = prepared.meter()
        meter.start()
        calls = workloads.drive(clients, duration, max_calls, call)
        cpu, spread = meter.stop()
    return Cell(prepared.setup.name, kind, clients, round_, len(calls.latencies), calls.per_second, calls.p(50),
                calls.p(95), len(calls.errors), calls.errors[0] if calls.errors else None, cpu,
                spread.get("mlflow", []))  # fmt: skip


def run_transfers(prepared: list[Prepared], size_mb: int, repeats: int, work: Path) -> list[Transfer]:
    """Upload then download one random file per setup and transfer mode, `repeats` times, in turn.
    A setup's `transfer_modes` (label: client env) name the paths a client can take; by default
    one, labelled with the setup's name."""
    path = work / "artifact.bin"
    workloads.write_random_file(path, size_mb * workloads.MB)
    paths = [(each, label, extra) for each in prepared
             for label, extra in getattr(each.setup, "transfer_modes", {each.setup.name: {}}).items()]  # fmt: skip
    results = {(label, d): Transfer(label, d) for _, label, _ in paths for d in ("upload", "download")}
    for attempt in range(repeats):
        for each, label, extra in paths:
            with pointed_at(each.env["MLFLOW_TRACKING_URI"], each.env), _environ(extra):
                run_id = workloads.new_runs(each.experiment_id, 1, f"artifact-{attempt}")[0]
                for direction in ("upload", "download"):
                    meter = each.meter()
                    meter.start()
                    if direction == "upload":
                        seconds = workloads.upload(run_id, path)
                    else:
                        seconds = workloads.download(run_id, path.name, size_mb * workloads.MB, work / "down")
                    cpu, _ = meter.stop()
                    result = results[(label, direction)]
                    result.seconds.append(seconds)
                    for group, value in cpu.items():
                        result.cpu.setdefault(group, []).append(value)
    path.unlink()
    return list(results.values())


@contextlib.contextmanager
def _environ(extra: dict[str, str]):
    """`extra` in os.environ for the block (the client reads MLFLOW_ENABLE_PROXY_MULTIPART_* there)."""
    saved = {name: os.environ.get(name) for name in extra}
    os.environ.update(extra)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _median_round(cells: list[Cell]) -> Cell:
    ordered = sorted(cells, key=lambda c: c.calls_per_s)
    return ordered[(len(ordered) - 1) // 2]


def _cpu_text(cpu: dict[str, float], workers: list[float]) -> str:
    parts = []
    for group in GROUPS:
        if group in cpu:
            text = f"{group} {cpu[group]:.1f}"
            if group == "mlflow" and len(workers) > 1:
                text += " (" + "/".join(f"{w:.1f}" for w in workers) + ")"
            parts.append(text)
    return ", ".join(parts)


def render_calls(cells: list[Cell]) -> list[str]:
    lines = [
        "| call | clients | setup | calls/s (rounds: min-max) | ratio to blog | p50 ms | p95 ms | failed | "
        "CPU s in the cell (mlflow per worker) |",
        "|---|---:|---|---:|---:|---:|---:|---:|---|",
    ]
    keys = sorted({(c.kind, c.clients) for c in cells}, key=lambda k: (KINDS.index(k[0]), k[1]))
    for kind, clients in keys:
        mine = [c for c in cells if (c.kind, c.clients) == (kind, clients)]
        by_setup = {s: [c for c in mine if c.setup == s] for s in dict.fromkeys(c.setup for c in mine)}
        base = by_setup.get(BASELINE)
        base_rate = statistics.median(c.calls_per_s for c in base) if base else None
        for setup, rounds in by_setup.items():
            rate = statistics.median(c.calls_per_s for c in rounds)
            low, high = min(c.calls_per_s for c in rounds), max(c.calls_per_s for c in rounds)
            shown = _median_round(rounds)
            failed = sum(c.failed for c in rounds)
            ratio = f"{rate / base_rate:.2f}x" if base_rate else "-"
            lines.append(
                f"| {kind} | {clients} | {setup} | {rate:.1f} ({low:.1f}-{high:.1f}) | {ratio} | {shown.p50_ms:.1f} | "
                f"{shown.p95_ms:.1f} | {failed} | {_cpu_text(shown.cpu, shown.workers)} |"
            )
    failures = [c for c in cells if c.failed]
    for c in failures:
        lines.append(
            f"\n{c.setup} {c.kind} x{c.clients} (round {c.round}): {c.failed} failed, first: {c.first_failure}"
        )
    return lines


def render_transfers(transfers: list[Transfer], size_mb: int) -> list[str]:
    lines = [
        f"| {size_mb} MiB artifact | setup | MB/s (median of {len(transfers[0].seconds)}) | best | ratio to blog | "
        "CPU s per transfer (median) |",
        "|---|---|---:|---:|---:|---|",
    ]
    for direction in ("upload", "download"):
        rows = [t for t in transfers if t.direction == direction]
        base = next((t for t in rows if t.setup == BASELINE), None)
        base_rate = size_mb / statistics.median(base.seconds) if base else None
        for t in rows:
            rate = size_mb / statistics.median(t.seconds)
            ratio = f"{rate / base_rate:.2f}x" if base_rate else "-"
            cpu = {group: statistics.median(values) for group, values in t.cpu.items()}
            lines.append(f"| {direction} | {t.setup} | {rate:.1f} | {size_mb / min(t.seconds):.1f} | {ratio} | "
                         f"{_cpu_text(cpu, [])} |")  # fmt: skip
    return lines


KINDS = ("log_metric", "log_batch", "search_runs", "get_metric_history")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--setups", default="ours,blog,solo", help=f"comma-separated, of {','.join(SETUPS)}")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per cell")
    parser.add_argument("--rounds", type=int, default=2, help="times every cell runs on every setup")
    parser.add_argument("--max-calls", type=int, default=20000, help="upper bound of calls per client per cell")
    parser.add_argument("--log-clients", default="1,8,32", help="client counts of log_metric")
    parser.add_argument("--batch-clients", default="1,8,32,64", help="client counts of log_batch (100 metrics)")
    parser.add_argument("--read-clients", default="1,8", help="client counts of search_runs and get_metric_history")
    parser.add_argument("--search-runs", type=int, default=1000, help="runs search_runs orders (it returns 100)")
    parser.add_argument("--history-points", type=int, default=20000, help="points of the metric history read")
    parser.add_argument("--artifact-mb", type=int, default=500, help="artifact size; 0 skips transfers")
    parser.add_argument("--repeats", type=int, default=3, help="transfers per direction per setup")
    parser.add_argument("--json", type=Path, help="also write the raw numbers here")
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="NAME=JSON",
        help="also run `ours-NAME`, the dev topology with other stack settings and/or extra server env, "
        'e.g. 2x1=\'{"settings": {"tracking": {"workers": 1, "replicas": 2}}}\' or '
        'pool10=\'{"server_env": {"MLFLOW_SQLALCHEMYSTORE_POOL_SIZE": "10"}}\' (a lever to measure, '
        "not what the stack runs)",
    )
    args = parser.parse_args(argv)
    names = args.setups.split(",")
    unknown = [n for n in names if n not in SETUPS]
    if unknown:
        parser.error(f"unknown setups {unknown}: choose from {sorted(SETUPS)}")
    variants = {}
    for item in args.variant:
        name, _, text = item.partition("=")
        try:
            variants[name] = json.loads(text)
        except json.JSONDecodeError as error:
            parser.error(f"--variant {name}: not JSON ({error})")
        if not isinstance(variants[name], dict) or set(variants[name]) - {"settings", "server_env"}:
            parser.error(f"--variant {name}: a JSON object of `settings` and/or `server_env`")

    def levels(text: str) -> list[int]:
        values = [int(x) for x in text.split(",") if x]
        if not all(1 <= n <= 256 for n in values):
            parser.error("client counts must be 1-256")
        return values

    plan = [("log_metric", n) for n in levels(args.log_clients)]
    plan += [("log_batch", n) for n in levels(args.batch_clients)]
    plan += [(kind, n) for kind in ("search_runs", "get_metric_history") for n in levels(args.read_clients)]
    if args.duration > 600 or not 1 <= args.rounds <= 10 or args.repeats > 20:
        parser.error("keep it bounded: <= 600 s per cell, 1-10 rounds, <= 20 repeats")

    load_before = os.getloadavg()
    setups = [SETUPS[name]() for name in names] + [
        Ours(spec.get("settings"), spec.get("server_env"), name) for name, spec in variants.items()
    ]
    started = []
    cells: list[Cell] = []
    transfers: list[Transfer] = []
    try:
        for setup in setups:
            started.append(setup)  # before start(): a setup that fails half-way stops what it started
            setup.start()
            print(f"{setup.name} up: {setup.client_env()['MLFLOW_TRACKING_URI']}", file=sys.stderr)
        prepared = [Prepared(s, args.search_runs, args.history_points) for s in setups]
        for round_ in range(1, args.rounds + 1):
            for kind, clients in plan:
                for each in prepared:
                    cell = run_cell(each, kind, clients, args.duration, args.max_calls, round_)
                    print(f"round {round_} {kind:18} x{clients:<3} {cell.setup:5} {cell.calls_per_s:8.1f} calls/s  "
                          f"p95 {cell.p95_ms:7.1f} ms  failed {cell.failed}", file=sys.stderr)  # fmt: skip
                    cells.append(cell)
        if args.artifact_mb:
            with tempfile.TemporaryDirectory(prefix="bench-compare-") as work:
                transfers = run_transfers(prepared, args.artifact_mb, args.repeats, Path(work))
    finally:
        for setup in reversed(started):
            setup.stop()
    load_after = os.getloadavg()
    print(
        f"{os.cpu_count()} CPUs, {platform.platform()}; {args.duration} s per cell, {args.rounds} round(s); "
        f"load average (1/5/15 min) {'/'.join(f'{x:.1f}' for x in load_before)} before, "
        f"{'/'.join(f'{x:.1f}' for x in load_after)} after\n"
    )
    print("\n".join(render_calls(cells)))
    if transfers:
        print()
        print("\n".join(render_transfers(transfers, args.artifact_mb)))
    if args.json:
        meta = {
            "load_before": load_before,
            "load_after": load_after,
            "args": {k: str(v) for k, v in vars(args).items()},
        }
        args.json.write_text(json.dumps({"meta": meta, "cells": [asdict(c) for c in cells],
                                         "transfers": [asdict(t) for t in transfers]}, indent=2))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
