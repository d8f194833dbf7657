"""python -m migrate: an MLflow SQLite database and its local artifacts onto PostgreSQL + S3.

Steps: snapshot the source (the user's file is only read) -> read the target's state ->
upgrade the snapshot to the target's schema revision -> checks (empty target, orphans,
lengths, bucket) -> [--dry-run stops here] -> create the target schema with MLflow's own
migrations -> upload artifacts -> copy rows in one transaction -> reset sequences -> verify.
Exit codes: 0 done and verified, 1 verification failed, 2 refused or bad input, 3 unexpected.
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import sqlite3
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlparse

from migrate import artifacts, copy_data, planning, reachability, s3, schema, sequences, source, target, verify
from migrate.errors import MigrationError, VerificationError, mask_url, redact
from migrate.progress import Progress

# bench/migrate_bench.py plans its verification with this name.
_plans = planning.table_plans

EPILOG = """\
The target URL is best passed in the environment, not on the command line:
  export MLFLOW_MIGRATE_TARGET_URL='postgresql://mlflow@127.0.0.1:5432/mlflow?sslmode=require'
  export PGPASSWORD=...            # or put it in ~/.pgpass
S3 credentials come from the usual AWS variables/profile/role; MLFLOW_S3_ENDPOINT_URL points
at MinIO or another S3-compatible server. See docs/migrate.md.
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m migrate",
        description="Migrate an MLflow SQLite database and its local artifacts to PostgreSQL and S3.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--source",
        required=True,
        metavar="FILE",
        help="the MLflow SQLite file (mlflow.db), or s3://bucket/key of a staged copy; only read",
    )
    parser.add_argument(
        "--target-url", metavar="URL", help=f"target PostgreSQL URL (default: ${target.ENV_URL}, then MLFLOW_DB_*)"
    )
    art = parser.add_argument_group("artifacts")
    art.add_argument(
        "--artifact-root",
        metavar="DIR",
        help="artifact folder to copy (e.g. ./mlruns), or s3://bucket/prefix of a staged copy",
    )
    art.add_argument(
        "--recorded-artifact-root",
        metavar="PATH",
        help="how the database spells that folder, if it was moved since: absolute, file://, or "
        "relative as MLflow 1.x recorded it (./mlruns) (default: --artifact-root)",
    )
    art.add_argument(
        "--recorded-cwd",
        metavar="DIR",
        help="the directory MLflow ran in when it recorded relative locations (./mlruns/1/...); "
        "absolute (default: the folder holding the recorded artifact root)",
    )
    art.add_argument(
        reachability.KEEP_FLAG,
        action="store_true",
        help="leave locations this tool cannot map (outside the root, another bucket, http) as they are, "
        "instead of refusing; they will not resolve through the new server",
    )
    art.add_argument(
        "--artifacts-destination",
        metavar="S3_URL",
        help="s3://bucket[/prefix]: the server's --artifacts-destination (proxied) or artifact root (direct)",
    )
    art.add_argument(
        "--artifact-mode",
        choices=("proxied", "direct"),
        default="proxied",
        help="proxied: locations become mlflow-artifacts:/... (the platform default); "
        "direct: s3://bucket/prefix/... (default: %(default)s)",
    )
    art.add_argument(
        "--s3-endpoint-url",
        metavar="URL",
        default=os.environ.get("MLFLOW_S3_ENDPOINT_URL"),
        help="S3-compatible endpoint (default: $MLFLOW_S3_ENDPOINT_URL; AWS when unset)",
    )
    art.add_argument(
        "--skip-artifacts", action="store_true", help="copy the database only: no upload and no location rewrite"
    )
    art.add_argument(
        "--upload-workers", type=int, default=8, metavar="N", help="parallel uploads (default: %(default)s)"
    )
    mode = parser.add_argument_group("behaviour")
    mode.add_argument(
        "--replace",
        action="store_true",
        help="replace the data of a target that already holds MLflow data (one transaction)",
    )
    mode.add_argument("--dry-run", action="store_true", help="check everything and print the plan; write nothing")
    mode.add_argument(
        "--verify-only", action="store_true", help="only compare an already migrated target with the source"
    )
    mode.add_argument(
        "--batch-size", type=int, default=10000, metavar="N", help="rows per COPY batch (default: %(default)s)"
    )
    mode.add_argument(
        "--sample-rows",
        type=int,
        default=1000,
        metavar="N",
        help="rows per table compared value by value after the copy; 0 = all (default: %(default)s)",
    )
    mode.add_argument(
        "--verify-locations",
        type=int,
        default=100000,
        metavar="N",
        help="stored locations per column checked to resolve on the new server (a random sample "
        "beyond N); 0 = all (default: %(default)s)",
    )
    mode.add_argument(
        "--work-dir", metavar="DIR", help="where the source snapshot goes (default: a temp dir, removed after)"
    )
    mode.add_argument("--no-progress", action="store_true", help="no progress bar")
    mode.add_argument("-v", "--verbose", action="store_true", help="MLflow/alembic logs and tracebacks")
    return parser


def say(message: str = "") -> None:
    print(message, flush=True)


@dataclass
class Context:
    args: argparse.Namespace
    url: str
    work_dir: Path
    rewriter: artifacts.Rewriter | None = None
    destination: artifacts.Destination | None = None
    files: dict[str, int] = field(default_factory=dict)
    client: object = None  # boto3 S3 client, made on first use

    @property
    def artifact_root(self) -> str:
        """The folder (absolute) or s3:// prefix the artifact tree is read from."""
        root = self.args.artifact_root
        return root if root.startswith("s3://") else str(Path(root).expanduser().resolve())


def _validate(args: argparse.Namespace) -> None:
    if args.dry_run and args.verify_only:
        raise MigrationError("--dry-run and --verify-only do not go together")
    if args.batch_size < 1:
        raise MigrationError("--batch-size must be at least 1")
    if args.skip_artifacts:
        return
    if not args.artifact_root or not args.artifacts_destination:
        raise MigrationError("give --artifact-root and --artifacts-destination, or --skip-artifacts")
    if args.artifact_root.startswith("s3://"):
        if not args.recorded_artifact_root:
            raise MigrationError(
                "an s3:// --artifact-root needs --recorded-artifact-root (the local path the database recorded)"
            )
        return
    root = Path(args.artifact_root).expanduser()
    if not root.is_dir():
        raise MigrationError(f"artifact root is not a directory: {root}")


def _artifact_setup(ctx: Context) -> None:
    args = ctx.args
    if args.skip_artifacts:
        return
    ctx.destination = artifacts.Destination.parse(args.artifacts_destination, args.artifact_mode)
    recorded = args.recorded_artifact_root or ctx.artifact_root
    if recorded.startswith("file:"):
        recorded = unquote(urlparse(recorded).path)
    ctx.rewriter = artifacts.Rewriter(recorded, ctx.destination, _recorded_cwd(ctx, recorded))
    ctx.files = (
        artifacts.s3_files(_s3(ctx), *s3.split_s3_url(ctx.artifact_root))
        if ctx.artifact_root.startswith("s3://")
        else artifacts.local_files(Path(ctx.artifact_root))
    )


def _recorded_cwd(ctx: Context, recorded: str) -> str:
    """Where relative locations (MLflow 1.x: ./mlruns/1/...) and a relative recorded root resolve.
    Both resolve against the same directory, so by default any directory that holds the root does."""
    if ctx.args.recorded_cwd:
        cwd = ctx.args.recorded_cwd
        if cwd.startswith("file:"):
            cwd = unquote(urlparse(cwd).path)
        if not cwd.startswith("/"):
            raise MigrationError(f"--recorded-cwd must be an absolute path (on the machine MLflow ran on), got {cwd!r}")
        return cwd
    if recorded.startswith("/"):
        return os.path.dirname(recorded.rstrip("/")) or "/"
    if not ctx.artifact_root.startswith("s3://"):
        return os.path.dirname(ctx.artifact_root)
    return "/"


def _s3(ctx: Context):
    if ctx.client is None:
        target.load_file_secrets()
        ctx.client = s3.s3_client(ctx.args.s3_endpoint_url, ctx.args.upload_workers)
    return ctx.client


def _report_rewrites(column_plans: list[artifacts.ColumnPlan], ctx: Context) -> None:
    if ctx.rewriter is None:
        say("artifacts: skipped; stored locations are copied unchanged and local paths will not resolve on a server")
        return
    assert ctx.destination is not None, "_artifact_setup sets the destination along with the rewriter"
    say(
        f"artifact locations under {ctx.rewriter.root} -> "
        f"{ctx.destination.uri('') if ctx.destination.mode == 'proxied' else ctx.destination.root_uri + '/'}"
    )
    for cp in column_plans:
        if not cp.rewritten and not cp.unchanged:
            continue
        say(f"  {cp.label}: {cp.rewritten} rewritten, {cp.unchanged} unchanged")
    kept = [cp for cp in column_plans if cp.unmapped]
    if kept:  # only reached with --keep-unmapped-locations; check_fit refuses them otherwise
        say(f"warning: left as they are ({reachability.KEEP_FLAG}); they will not resolve on the new server:")
        for line in planning.unmapped_lines(kept):
            say("  " + line.strip())
    size = sum(ctx.files.values())
    say(
        f"artifact files: {len(ctx.files):,} ({size / 1e6:,.1f} MB) -> s3://{ctx.destination.bucket}/"
        f"{ctx.destination.key('')}"
    )


def run(args: argparse.Namespace) -> int:
    _validate(args)
    url, url_from = target.resolve_url(args.target_url)
    if args.target_url and target.password_of(url):
        say(f"note: a password on the command line is visible to other users; prefer ${target.ENV_URL} or PGPASSWORD")
    work_dir = Path(args.work_dir) if args.work_dir else Path(tempfile.mkdtemp(prefix="mlflow-migrate-"))
    work_dir.mkdir(parents=True, exist_ok=True)
    ctx = Context(args=args, url=url, work_dir=work_dir)
    try:
        return _run(ctx, url_from)
    finally:
        if not args.work_dir:
            shutil.rmtree(work_dir, ignore_errors=True)


def _run(ctx: Context, url_from: str) -> int:
    args = ctx.args
    started = time.monotonic()
    if args.source.startswith("s3://"):
        snap = source.snapshot_source(source.download_source(args.source, ctx.work_dir, _s3(ctx)), ctx.work_dir)
        shown = args.source
    else:
        snap = source.snapshot_source(args.source, ctx.work_dir)
        shown = Path(args.source).resolve()
    say(f"source: {shown} (schema revision {snap.revision}; working on a copy)")
    engine = target.connect(ctx.url)
    say(f"target: {mask_url(ctx.url)} (from {url_from})")
    try:
        state = schema.inspect_target(engine)
        # has_schema implies a revision; the explicit check is for the type checker.
        target_rev = state.revision if state.has_schema and state.revision is not None else schema.head_revision()
        if args.verify_only and not state.has_schema:
            raise MigrationError("--verify-only: the target has no MLflow schema")
        schema.check_revisions(snap.revision, target_rev)
        if state.has_schema:
            say(f"target schema: revision {target_rev}")
        else:
            say(f"target schema: none yet; MLflow {schema._mlflow_version()} will create it at revision {target_rev}")
        if snap.revision != target_rev:
            say(f"upgrading the source copy {snap.revision} -> {target_rev}")
            schema.align_source(snap.path, target_rev)
        _artifact_setup(ctx)
        conn = sqlite3.connect(snap.path)
        try:
            return _migrate(ctx, engine, state, conn, started)
        finally:
            conn.close()
    finally:
        engine.dispose()


def _migrate(ctx: Context, engine, state: schema.TargetState, conn: sqlite3.Connection, started: float) -> int:
    args = ctx.args
    raw = engine.raw_connection()
    try:
        cursor = raw.cursor()
        catalog = schema.target_catalog(cursor) if state.has_schema else None
        plans = planning.table_plans(conn, catalog, ctx.rewriter)
        ignored = sorted(set(catalog or ()) - {p.name for p in plans} - schema.NOT_COPIED)
        if ignored:
            say(f"target tables that are not MLflow's are left alone: {', '.join(ignored)}")
        if args.verify_only:
            raw.rollback()
            return _verify(ctx, conn, cursor, plans, catalog)
        if state.has_schema:
            existing = schema.user_rows(cursor, {p.name for p in plans})
            raw.rollback()
            if existing and not args.replace:
                listing = ", ".join(f"{t}: {n}" for t, n in existing.items())
                raise MigrationError(
                    f"the target already holds MLflow data ({listing}); "
                    "nothing was written. Use --replace to overwrite it."
                )
            if existing:
                say(f"--replace: the target's data will be replaced ({sum(existing.values()):,} rows now)")
        column_plans = planning.check_fit(
            conn,
            plans,
            catalog or planning.declared_catalog(conn),
            ctx.rewriter,
            warn=say,
            keep_unmapped=args.keep_unmapped_locations,
        )
        total = sum(p.rows for p in plans)
        say(f"rows to copy: {total:,} in {sum(1 for p in plans if p.rows)} non-empty of {len(plans)} tables")
        _report_rewrites(column_plans, ctx)
        client = None
        if ctx.destination is not None:
            client = _s3(ctx)
            artifacts.check_bucket(client, ctx.destination)
            _check_planned_locations(ctx, conn, client, {p.name for p in plans})
        if args.dry_run:
            say("dry run: nothing was written")
            return 0

        if not state.has_schema:
            raw.close()
            raw = None
            schema.create_target_schema(engine)
            created = schema.inspect_target(engine).revision
            aligned = conn.execute("SELECT version_num FROM alembic_version").fetchone()[0]
            if created != aligned:  # a server of another MLflow version got there first
                raise MigrationError(
                    f"the target schema is at {created}, the source copy at {aligned}; run again to align to the target"
                )
            say(f"target schema created (revision {created})")
            raw = engine.raw_connection()
            cursor = raw.cursor()
            catalog = schema.target_catalog(cursor)
            plans = planning.table_plans(conn, catalog, ctx.rewriter)

        if client is not None:
            assert ctx.destination is not None, "the S3 client is made only for an artifact destination"
            uploaded, skipped = artifacts.upload_tree(
                client,
                ctx.artifact_root,
                ctx.files,
                ctx.destination,
                workers=args.upload_workers,
                show_progress=not args.no_progress,
            )
            say(f"artifacts: {uploaded:,} uploaded, {skipped:,} already there")

        copy_started = time.monotonic()
        copied, next_ids = _copy(raw, cursor, conn, plans, catalog, args)
        elapsed = time.monotonic() - copy_started
        say(f"copied {copied:,} rows in {elapsed:.1f}s ({copied / elapsed if elapsed else 0:,.0f} rows/s)")
        if next_ids:
            say("sequences: " + ", ".join(f"{k} next {v}" for k, v in next_ids.items()))
        result = _verify(ctx, conn, cursor, plans, catalog, client)
        say(f"done in {time.monotonic() - started:.1f}s")
        return result
    finally:
        if raw is not None:
            raw.close()


def _check_planned_locations(ctx: Context, conn: sqlite3.Connection, client, tables: set[str]) -> None:
    """The reachability check of the verification, on what the copy will write: the rewritten
    values and the bucket as it will be after the upload. Refuses before anything is written."""
    assert ctx.rewriter is not None and ctx.destination is not None, "only with an artifact destination"
    found = reachability.source_locations(conn, tables)
    objects = artifacts.existing_objects(client, ctx.destination)
    objects.update({ctx.destination.key(rel): size for rel, size in ctx.files.items()})
    report = reachability.check(
        found,
        reachability.planned_locations(found, ctx.rewriter),
        ctx.rewriter,
        ctx.files,
        objects,
        keep_unmapped=ctx.args.keep_unmapped_locations,
        limit=ctx.args.verify_locations,
    )
    if report.problems:
        raise MigrationError(
            f"{len(report.problems)} stored location(s) would not resolve on the new server; nothing was written:\n  "
            + "\n  ".join(report.problems[:50])
        )
    say(f"locations: {report.checked:,} will resolve on the new server{_location_extras(report)}")


def _location_extras(report: reachability.Report) -> str:
    extras = []
    if report.registry:
        extras.append(f"{report.registry:,} models:/ or runs:/ references")
    if report.kept:
        extras.append(f"{report.kept:,} left as they are")
    if report.sampled:
        extras.append("a random sample per column")
    return f" ({'; '.join(extras)})" if extras else ""


def _copy(raw, cursor, conn, plans, catalog, args) -> tuple[int, dict[str, int]]:
    import psycopg2.errors

    progress = Progress(sum(p.rows for p in plans), "rows", enabled=not args.no_progress)
    try:
        # A running server holding locks makes TRUNCATE wait: fail clearly instead.
        cursor.execute("SET LOCAL lock_timeout = '30s'")
        cursor.execute("SET LOCAL statement_timeout = 0")
        copy_data.truncate(cursor, [p.name for p in plans])
        copied = 0
        for plan in plans:
            if plan.rows:
                copied += copy_data.copy_table(conn, cursor, plan, catalog[plan.name], args.batch_size, progress)
        floors = source.sqlite_sequences(conn)
        next_ids = sequences.reset_sequences(cursor, {p.name for p in plans}, floors)
        raw.commit()
    except psycopg2.errors.LockNotAvailable:
        raw.rollback()
        raise MigrationError(
            "the target's tables are in use by another session (is an MLflow server "
            "running against it? stop it or scale the service to 0); nothing was written"
        ) from None
    except BaseException:
        raw.rollback()
        raise
    finally:
        progress.close()
    return copied, next_ids


def _verify(ctx: Context, conn, cursor, plans, catalog, client=None) -> int:
    args = ctx.args
    started = time.monotonic()
    problems, compared = verify.verify(conn, cursor, plans, catalog, args.sample_rows)
    located = None
    if ctx.destination is not None:
        assert ctx.rewriter is not None, "_artifact_setup sets the rewriter along with the destination"
        client = client or _s3(ctx)
        objects = artifacts.existing_objects(client, ctx.destination)  # one listing for both checks
        problems += artifacts.verify_tree(client, ctx.files, ctx.destination, objects)
        tables = {p.name for p in plans}
        located = reachability.check(
            reachability.source_locations(conn, tables),
            reachability.target_locations(cursor, conn, tables),
            ctx.rewriter,
            ctx.files,
            objects,
            keep_unmapped=args.keep_unmapped_locations,
            limit=args.verify_locations,
        )
        problems += located.problems
    if problems:
        raise VerificationError(problems)
    say(
        f"verified: row counts equal in {len(plans)} tables, {sum(compared.values()):,} rows compared "
        f"value by value"
        + (
            f", {len(ctx.files):,} artifact files present, {located.checked:,} stored locations resolve "
            f"on the new server{_location_extras(located)}"
            if located is not None
            else ""
        )
        + f" ({time.monotonic() - started:.1f}s)"
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO if args.verbose else logging.WARNING, format="%(name)s: %(message)s")
    if not args.verbose:
        # MLflow sets its loggers up on import (later, lazily) from this variable.
        os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
        logging.getLogger("alembic").setLevel(logging.WARNING)
    secret = None
    try:
        secret = target.password_of(target.resolve_url(args.target_url)[0])
    except Exception:
        pass
    try:
        return run(args)
    except VerificationError as error:
        print(f"error: {redact(str(error), secret)}", file=sys.stderr, flush=True)
        print("the data was committed; inspect the target, then re-run with --replace", file=sys.stderr)
        return error.exit_code
    except MigrationError as error:
        print(f"error: {redact(str(error), secret)}", file=sys.stderr, flush=True)
        return error.exit_code
    except KeyboardInterrupt:
        print("interrupted; the row copy is one transaction, so the target has none of it", file=sys.stderr)
        return 130
    except Exception as error:  # a bug or an environment we did not foresee
        if args.verbose:
            import traceback

            print(redact(traceback.format_exc(), secret), file=sys.stderr)
        print(f"error: unexpected {type(error).__name__}: {redact(str(error), secret)}", file=sys.stderr)
        return 3
