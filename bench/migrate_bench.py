"""Benchmark of `python -m migrate` against what tutorials recommend (pgloader, data only,
into a schema `mlflow db upgrade` made), on the same generated MLflow database.

    python bench/migrate_bench.py                    # 120k metric rows, prints a markdown table
    python bench/migrate_bench.py --runs 20 --steps 100   # quick look

The source is written by the real MLflow client (log_batch into SQLite). Both tools load it
into a fresh database of a local PostgreSQL (testkit.LocalPostgres); each result then goes
through the same verification (migrate.verify: row counts, every row compared, sequences).
pgloader comes from Debian (`apt-get install -y pgloader`); it is skipped if absent. Only
127.0.0.1 is contacted.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

from migrate import schema, verify  # noqa: E402
from migrate.cli import _plans  # noqa: E402
from testkit import LocalPostgres  # noqa: E402

# pgloader as the tutorials run it, and the variant that gets past the FK errors on a
# superuser (not possible on RDS: disabling the FK triggers needs a real superuser).
PGLOADER_VARIANTS = {
    "pgloader (tutorial: data only)": ["--with", "data only"],
    "pgloader (data only, truncate, disable triggers)": [
        "--with",
        "data only",
        "--with",
        "truncate",
        "--with",
        "disable triggers",
    ],
}


def generate(db: Path, runs: int, steps: int, keys: int) -> dict[str, int]:
    """An MLflow database with runs * steps * keys metric rows, logged like training does."""
    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param, RunTag

    uri = f"sqlite:///{db}"
    client = MlflowClient(tracking_uri=uri)
    experiments = [client.create_experiment(f"bench-{i}") for i in range(5)]
    now = 1_700_000_000_000
    for r in range(runs):
        run = client.create_run(experiments[r % len(experiments)], run_name=f"run-{r}")
        run_id = run.info.run_id
        client.log_batch(
            run_id,
            params=[Param(f"p{i}", str(i * r)) for i in range(10)],
            tags=[RunTag(f"t{i}", f"value {i}") for i in range(5)],
        )
        batch = []
        for step in range(steps):
            for k in range(keys):
                batch.append(Metric(f"metric_{k}", (step + 1) ** -0.5 * (k + 1) + r * 1e-3, now + step, step))
                if len(batch) == 1000:  # MLflow's per-call limit
                    client.log_batch(run_id, metrics=batch)
                    batch = []
        if batch:
            client.log_batch(run_id, metrics=batch)
        client.set_terminated(run_id)
    with sqlite3.connect(db) as conn:
        return {
            t: conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0]
            for t in ("experiments", "runs", "params", "tags", "metrics", "latest_metrics")
        }


def create_schema(url: str) -> float:
    """`mlflow db upgrade` (in a child, URL from the environment, not argv)."""
    started = time.monotonic()
    subprocess.run(
        [sys.executable, "-c", "import os; from mlflow.db import upgrade; upgrade.callback(os.environ['BENCH_URL'])"],
        env={**os.environ, "BENCH_URL": url, "MLFLOW_LOGGING_LEVEL": "WARNING"},
        check=True,
    )
    return time.monotonic() - started


def verify_target(source_db: Path, url: str, sample: int = 0) -> list[str]:
    """migrate's verification, with no location rewrite expected (pgloader does none)."""
    import sqlalchemy

    engine = sqlalchemy.create_engine(url)
    raw = engine.raw_connection()
    conn = sqlite3.connect(f"file:{source_db}?mode=ro", uri=True)
    try:
        cursor = raw.cursor()
        catalog = schema.target_catalog(cursor)
        plans = _plans(conn, catalog, None)
        problems, _ = verify.verify(conn, cursor, plans, catalog, sample)
        return problems
    except Exception as error:  # e.g. tables pgloader left out
        return [f"verification could not run: {error}"]
    finally:
        conn.close()
        raw.close()
        engine.dispose()


_SCHEMA_FINGERPRINT = """
SELECT 'constraint ' || conrelid::regclass || ' ' || pg_get_constraintdef(oid)
FROM pg_constraint WHERE connamespace = 'public'::regnamespace
UNION ALL
SELECT 'index ' || regexp_replace(indexdef, '^CREATE (UNIQUE )?INDEX \\S+ ', 'CREATE \\1INDEX ')
FROM pg_indexes WHERE schemaname = 'public'
"""


def schema_fingerprint(pg: LocalPostgres, dbname: str) -> set[str]:
    """Constraints and indexes by definition (names aside), to see what a load left of them."""
    conn = pg.connect(dbname)
    try:
        with conn.cursor() as cur:
            cur.execute(_SCHEMA_FINGERPRINT)
            return {row[0] for row in cur.fetchall()}
    finally:
        conn.close()


def run_ours(pg: LocalPostgres, db: Path, dbname: str, sample: str = "0") -> dict:
    pg.create_database(dbname)
    env = {**os.environ, "MLFLOW_MIGRATE_TARGET_URL": pg.url(dbname)}
    started = time.monotonic()
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "migrate",
            "--source",
            str(db),
            "--skip-artifacts",
            "--no-progress",
            "--sample-rows",
            sample,
        ],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    wall = time.monotonic() - started
    copy_line = next((line for line in result.stdout.splitlines() if line.startswith("copied ")), "")
    copy_seconds = float(copy_line.split(" in ")[1].split("s ")[0]) if copy_line else float("nan")
    verify_line = next((line for line in result.stdout.splitlines() if line.startswith("verified: ")), "")
    verify_seconds = float(verify_line.rsplit("(", 1)[1].rstrip("s)")) if verify_line else float("nan")
    return {
        "wall": wall,
        "copy": copy_seconds,
        "verify": verify_seconds,
        "exit": result.returncode,
        "verified": result.returncode == 0 and not verify_target(db, pg.url(dbname)),
        "output": result.stdout + result.stderr,
    }


def run_pgloader(pg: LocalPostgres, db: Path, dbname: str, options: list[str]) -> dict:
    pg.create_database(dbname)
    url = pg.url(dbname)
    schema_seconds = create_schema(url)
    # pgloader reads PGPASSWORD when the URL has none, so the password stays off argv.
    target = f"postgresql://{pg.superuser}@{pg.host}:{pg.port}/{dbname}"
    started = time.monotonic()
    result = subprocess.run(
        ["pgloader", *options, str(db), target],
        env={**os.environ, "PGPASSWORD": pg.password},
        capture_output=True,
        text=True,
    )
    load = time.monotonic() - started
    problems = verify_target(db, url)
    return {
        "wall": schema_seconds + load,
        "copy": load,
        "exit": result.returncode,
        "verified": not problems,
        "problems": problems,
        "output": result.stdout + result.stderr,
    }


def median_round(rounds: list[dict]) -> dict:
    """Median times; verified only if every round was; the rest from the last round."""
    merged = dict(rounds[-1])
    for key in ("wall", "copy", "verify"):
        if key in merged:
            merged[key] = statistics.median(r[key] for r in rounds)
    merged["verified"] = all(r["verified"] for r in rounds)
    merged["exit"] = max(r["exit"] for r in rounds)
    return merged


def make_dirty(clean: Path, dirty: Path) -> str:
    """What a long-lived SQLite file often holds and SQLite never refused: a run deleted by
    hand (its metrics, params and tags left behind) and a name longer than VARCHAR(250)."""
    shutil.copyfile(clean, dirty)
    with sqlite3.connect(dirty) as conn:
        run_id = conn.execute("SELECT run_uuid FROM runs ORDER BY run_uuid LIMIT 1").fetchone()[0]
        orphans = conn.execute("SELECT count(*) FROM metrics WHERE run_uuid = ?", (run_id,)).fetchone()[0]
        conn.execute("DELETE FROM runs WHERE run_uuid = ?", (run_id,))
        conn.execute("UPDATE runs SET name = ? WHERE run_uuid = (SELECT max(run_uuid) FROM runs)", ("n" * 300,))
    return f"1 run deleted by hand ({orphans:,} orphan metric rows), 1 run name of 300 characters"


def dirty_round(pg: LocalPostgres, dirty: Path, pristine: set[str]) -> list[str]:
    """Both tools on the dirty copy: what they exit with, and what the target holds after."""
    lines = [
        "| tool | exit | target afterwards | same verification | constraints + indexes |",
        "| --- | ---: | --- | --- | --- |",
    ]
    pg.create_database("dirty_ours")
    env = {**os.environ, "MLFLOW_MIGRATE_TARGET_URL": pg.url("dirty_ours")}
    ours = subprocess.run(
        [sys.executable, "-m", "migrate", "--source", str(dirty), "--skip-artifacts", "--no-progress"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    message = " / ".join(
        line.strip()
        for line in ours.stderr.splitlines()[1:]
        if line.startswith("  ") and ":" in line and not line.strip().endswith(":")
    )
    conn = pg.connect("dirty_ours")
    with conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'")
        tables = cur.fetchone()[0]
    conn.close()
    lines.append(
        f"| python -m migrate | {ours.returncode} | untouched ({tables} tables): refused up front: "
        f"`{message}` | not run (nothing written) | not created |"
    )
    if shutil.which("pgloader"):
        name, options = next(iter(PGLOADER_VARIANTS.items()))
        result = run_pgloader(pg, dirty, "dirty_pgloader", options)
        problems = result["problems"]
        shown = "; ".join(p for p in problems[:3])
        lost = pristine - schema_fingerprint(pg, "dirty_pgloader")
        lines.append(
            f"| {name} | {result['exit']} | {'loaded, rows missing' if problems else 'loaded'} | "
            f"{'pass' if not problems else f'FAIL ({len(problems)}): {shown}'} | "
            f"{f'{len(lost)} lost: ' + '; '.join(sorted(lost)[:3]) if lost else 'identical'} |"
        )
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--keys", type=int, default=3, help="metric keys per run")
    parser.add_argument("--keep", metavar="DIR", help="keep the generated database and logs here")
    parser.add_argument("--source", metavar="FILE", help="benchmark this mlflow.db (a copy) instead of generating one")
    parser.add_argument("--repeats", type=int, default=3, help="runs per tool; times are medians")
    args = parser.parse_args()
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")

    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="migrate-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    db = work / "mlflow.db"
    try:
        if args.source:
            shutil.copyfile(args.source, db)
        elif not db.exists():
            started = time.monotonic()
            counts = generate(db, args.runs, args.steps, args.keys)
            print(f"generated in {time.monotonic() - started:.0f}s: {counts}", flush=True)
        with sqlite3.connect(db) as conn:
            tables = [
                t
                for (t,) in conn.execute(
                    "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%' "
                    "AND name != 'alembic_version'"
                )
            ]
            total = sum(conn.execute(f'SELECT count(*) FROM "{t}"').fetchone()[0] for t in tables)
            metrics = conn.execute("SELECT count(*) FROM metrics").fetchone()[0]
        print(f"source: {total:,} rows ({metrics:,} metric rows), {db.stat().st_size / 1e6:.1f} MB", flush=True)

        results = {}
        with LocalPostgres() as pg:
            pg.create_database("pristine")
            create_schema(pg.url("pristine"))
            pristine = schema_fingerprint(pg, "pristine")
            tools = {
                "python -m migrate (every row verified)": lambda name: run_ours(pg, db, name, "0"),
                "python -m migrate (default: 1000-row sample per table)": lambda name: run_ours(pg, db, name, "1000"),
            }
            if shutil.which("pgloader"):
                for name, options in PGLOADER_VARIANTS.items():
                    tools[name] = lambda dbname, options=options: run_pgloader(pg, db, dbname, options)
            else:
                print("pgloader not installed (apt-get install -y pgloader): skipped")
            for i, (name, run) in enumerate(tools.items()):
                rounds = []
                for r in range(args.repeats):  # median of fresh databases: the machine is shared
                    rounds.append(run(f"tool{i}_{r}"))
                    rounds[-1]["schema"] = schema_fingerprint(pg, f"tool{i}_{r}")
                    print(f"{name} #{r + 1}: {rounds[-1]['wall']:.1f}s exit {rounds[-1]['exit']}", flush=True)
                results[name] = median_round(rounds)
            dirty_note = make_dirty(db, work / "dirty.db")
            dirty_lines = dirty_round(pg, work / "dirty.db", pristine)
        if args.keep:
            for name, result in results.items():
                (work / (name.split(" ")[0].strip("(") + f"-{len(result['output'])}.log")).write_text(result["output"])

        print()
        load = os.getloadavg()[0]  # a shared machine: say how busy it was
        print(
            f"Machine: {os.cpu_count()} cores, {platform.system()} {platform.machine()}, "
            f"Python {platform.python_version()}, load average {load:.1f} at the end; "
            f"source {total:,} rows ({metrics:,} metric rows); medians of {args.repeats} runs"
        )
        print()
        print(
            "| tool | data load (s) | rows/s (data load) | whole command (s) | of which own verification (s) "
            "| exit | same verification | constraints + indexes vs `mlflow db upgrade` |"
        )
        print("| --- | ---: | ---: | ---: | ---: | ---: | --- | --- |")
        for name, r in results.items():
            rate = total / r["copy"] if r["copy"] == r["copy"] and r["copy"] > 0 else float("nan")
            verdict = "pass" if r["verified"] else "FAIL"
            lost, added = pristine - r["schema"], r["schema"] - pristine
            shape = "identical" if not lost and not added else f"{len(lost)} lost, {len(added)} changed/extra"
            own = f"{r['verify']:.1f}" if "verify" in r else "none"
            print(
                f"| {name} | {r['copy']:.2f} | {rate:,.0f} | {r['wall']:.1f} | {own} | {r['exit']} | {verdict} "
                f"| {shape} |"
            )
        for name, r in results.items():
            lost, added = sorted(pristine - r["schema"]), sorted(r["schema"] - pristine)
            if lost or added:
                print(f"\n{name}: schema differs from what MLflow creates; examples:")
                for line in lost[:4]:
                    print(f"  - missing: {line}")
                for line in added[:4]:
                    print(f"  - instead: {line}")
        print(f"\nThe same database with problems SQLite tolerates: {dirty_note}\n")
        print("\n".join(dirty_lines))
        for name, r in results.items():
            if r.get("problems"):
                print(f"\n{name}: {len(r['problems'])} verification problem(s), first ones:")
                for line in r["problems"][:8]:
                    print(f"  - {line}")
        return 0
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
