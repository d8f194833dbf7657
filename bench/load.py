"""Load benchmark of the dev topology (testkit.topology.DevTopology) on 127.0.0.1.

    python bench/load.py                      # full run, prints a markdown table
    python bench/load.py --duration 3 --artifact-mb 50 --repeats 1   # quick look

Measures, through nginx with the generated credentials and the real mlflow client:
- log_metric and log_batch (100 metrics per call): calls/s, p50 and p95 latency,
  with 1, 8 and 32 concurrent clients (threads; each logs to its own run, like
  concurrent training jobs). Each cell runs for --duration seconds, at most
  --max-calls calls per client.
- a 500 MB artifact upload through the proxy (mlflow client -> nginx -> MLflow ->
  S3) versus straight to the S3 server (boto3 upload_file, what MLflow itself
  uses), in MB/s; plus the download through the proxy.
Every loop is bounded; only 127.0.0.1 is contacted.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

# Before mlflow builds its cached HTTP session: one pooled connection per client thread.
os.environ.setdefault("MLFLOW_HTTP_POOL_MAXSIZE", "64")
os.environ.setdefault("MLFLOW_HTTP_POOL_CONNECTIONS", "64")
os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")  # keep stdout for the table

from bench import workloads  # noqa: E402
from testkit.topology import DevTopology  # noqa: E402

MB = workloads.MB


def run_calls(topo: DevTopology, kind: str, clients: int, duration: float, max_calls: int, experiment_id: str) -> dict:
    from mlflow import MlflowClient

    client = MlflowClient()
    run_ids = workloads.new_runs(experiment_id, clients, f"{kind}-{clients}")
    call = workloads.log_metric_call(run_ids) if kind == "log_metric" else workloads.log_batch_call(run_ids)
    logged_before = len(topo.access_log())
    calls = workloads.drive(clients, duration, max_calls, call)
    for run_id in run_ids:
        client.set_terminated(run_id)
    # What nginx adds: its request time minus MLflow's response time, per request.
    endpoint = "/api/2.0/mlflow/runs/log-metric" if kind == "log_metric" else "/api/2.0/mlflow/runs/log-batch"
    overhead = sorted(
        e["rt"] - e["urt"] for e in topo.access_log()[logged_before:] if e["path"] == endpoint and e["urt"] is not None
    )
    return {
        "kind": kind,
        "clients": clients,
        "calls": len(calls.latencies),
        "seconds": calls.seconds,
        "calls_per_s": calls.per_second,
        "p50_ms": calls.p(50),
        "p95_ms": calls.p(95),
        "nginx_p50_ms": workloads.percentile(overhead, 50) * 1000,
        "nginx_p95_ms": workloads.percentile(overhead, 95) * 1000,
        "errors": len(calls.errors),
        "first_error": calls.errors[0] if calls.errors else None,
    }


def run_artifacts(topo: DevTopology, size_mb: int, repeats: int, experiment_id: str, work: Path) -> list[dict]:
    import mlflow
    from boto3.s3.transfer import TransferConfig
    from mlflow import MlflowClient

    client = MlflowClient()
    path = work / "artifact.bin"
    workloads.write_random_file(path, size_mb * MB)
    s3 = topo.s3_client()
    rows = {
        "upload via nginx -> MLflow -> S3": [],
        "upload direct to S3 (boto3 upload_file)": [],
        "download via nginx <- MLflow <- S3": [],
    }
    for attempt in range(repeats):
        run_id = client.create_run(experiment_id, run_name=f"artifact-{attempt}").info.run_id
        began = time.perf_counter()
        client.log_artifact(run_id, str(path))
        rows["upload via nginx -> MLflow -> S3"].append(time.perf_counter() - began)

        began = time.perf_counter()
        s3.upload_file(str(path), topo.bucket, f"bench-direct/{attempt}/artifact.bin", Config=TransferConfig())
        rows["upload direct to S3 (boto3 upload_file)"].append(time.perf_counter() - began)

        target = work / f"download-{attempt}"
        began = time.perf_counter()
        got = mlflow.artifacts.download_artifacts(run_id=run_id, artifact_path="artifact.bin", dst_path=str(target))
        rows["download via nginx <- MLflow <- S3"].append(time.perf_counter() - began)
        if os.path.getsize(got) != size_mb * MB:
            raise RuntimeError(f"downloaded {os.path.getsize(got)} bytes, expected {size_mb * MB}")
        os.unlink(got)
        client.set_terminated(run_id)
    return [
        {
            "path": name,
            "mb": size_mb,
            "repeats": len(times),
            "median_s": statistics.median(times),
            "mb_per_s": size_mb / statistics.median(times),
            "best_mb_per_s": size_mb / min(times),
        }
        for name, times in rows.items()
    ]


def render(calls: list[dict], artifacts: list[dict], meta: dict) -> str:
    lines = [
        f"Machine: {meta['cpus']} CPUs, {meta['platform']}; MLflow server workers: {meta['workers']}, "
        f"servers: {meta['servers']}; {meta['duration']} s per cell; "
        f"1-min load average {meta['load_before']:.1f} before, {meta['load_after']:.1f} after"
        + (f"; extra server env: {meta['server_env']}" if meta["server_env"] else ""),
        "",
        "| call | clients | ok calls | calls/s | p50 ms | p95 ms | nginx adds p50/p95 ms | failed |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in calls:
        name = "log_batch (100 metrics)" if row["kind"] == "log_batch" else "log_metric"
        lines.append(
            f"| {name} | {row['clients']} | {row['calls']} | {row['calls_per_s']:.1f} | "
            f"{row['p50_ms']:.1f} | {row['p95_ms']:.1f} | {row['nginx_p50_ms']:.1f} / {row['nginx_p95_ms']:.1f} | "
            f"{row['errors']} |"
        )
    failures = [row for row in calls if row["errors"]]
    for row in failures:
        lines.append(f"\n{row['kind']} x{row['clients']}: first failure: {row['first_error']}")
    if artifacts:
        lines += [
            "",
            "| artifact transfer | size MB | runs | median s | MB/s (median) | MB/s (best) |",
            "|---|---:|---:|---:|---:|---:|",
        ]
        for row in artifacts:
            lines.append(
                f"| {row['path']} | {row['mb']} | {row['repeats']} | {row['median_s']:.2f} | "
                f"{row['mb_per_s']:.1f} | {row['best_mb_per_s']:.1f} |"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per (call, clients) cell")
    parser.add_argument("--max-calls", type=int, default=20000, help="upper bound of calls per client per cell")
    parser.add_argument("--concurrency", default="1,8,32", help="comma-separated client counts")
    parser.add_argument("--artifact-mb", type=int, default=500, help="artifact size; 0 skips the transfer test")
    parser.add_argument("--repeats", type=int, default=3, help="artifact transfers per path")
    parser.add_argument("--json", type=Path, help="also write the raw numbers here")
    parser.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra MLflow server env, to try a tuning (not what the stack runs)",
    )
    args = parser.parse_args(argv)
    levels = [int(x) for x in args.concurrency.split(",")]
    if not all(1 <= n <= 256 for n in levels) or args.duration > 600 or args.repeats > 20:
        parser.error("keep it bounded: 1-256 clients, <= 600 s per cell, <= 20 repeats")

    import mlflow

    server_env = dict(item.split("=", 1) for item in args.server_env)
    load_before = os.getloadavg()[0]
    with (
        DevTopology(server_env=server_env) as topo,
        topo.tracking_env(),
        tempfile.TemporaryDirectory(prefix="bench-") as work,
    ):
        print(f"topology up: {topo.tracking_uri} ({len(topo.instances)} MLflow server(s))", file=sys.stderr)
        experiment_id = mlflow.create_experiment("bench")
        run_calls(topo, "log_metric", 2, 2.0, 200, experiment_id)  # warm-up: every worker's store and pool
        calls = []
        for kind in ("log_metric", "log_batch"):
            for clients in levels:
                row = run_calls(topo, kind, clients, args.duration, args.max_calls, experiment_id)
                print(
                    f"{kind:10} x{clients:<3} {row['calls_per_s']:8.1f} calls/s  p50 {row['p50_ms']:7.1f} ms  "
                    f"p95 {row['p95_ms']:7.1f} ms  failed {row['errors']}",
                    file=sys.stderr,
                )
                calls.append(row)
        artifacts = (
            run_artifacts(topo, args.artifact_mb, args.repeats, experiment_id, Path(work)) if args.artifact_mb else []
        )
        server_errors = {name: lines for name, lines in topo.error_lines().items() if lines}
        bad_status = [e for e in topo.access_log() if e["status"] >= 500]
    meta = {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "workers": topo.settings.tracking.workers,
        "servers": len(topo.instances),
        "duration": args.duration,
        "server_env": server_env,
        # Other work on the machine skews everything: say how busy it was.
        "load_before": load_before,
        "load_after": os.getloadavg()[0],
    }
    print(render(calls, artifacts, meta))
    if server_errors or bad_status:
        print(f"\nWARNING: {len(bad_status)} 5xx responses; server errors: {server_errors}", file=sys.stderr)
    if args.json:
        args.json.write_text(json.dumps({"meta": meta, "calls": calls, "artifacts": artifacts}, indent=2))
    return 1 if (server_errors or bad_status or any(row["errors"] for row in calls)) else 0


if __name__ == "__main__":
    sys.exit(main())
