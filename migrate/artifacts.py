"""Artifacts: the local tree goes to the bucket unchanged in layout, and every stored location
under the old root is rewritten so the new server resolves it.

MLflow 3 lays artifacts out under an experiment's artifact_location:
    <root>/<experiment_id>/<run_id>/artifacts/...        runs.artifact_uri
    <root>/<experiment_id>/models/<model_id>/artifacts/   logged_models.artifact_location
    <root>/<experiment_id>/traces/<trace_id>/artifacts/   trace tag mlflow.artifactLocation
Keeping the paths relative to the root and only swapping the root keeps all of these valid:
    file:///old/mlruns/1/<run>/artifacts -> mlflow-artifacts:/1/<run>/artifacts   (proxied)
                                         -> s3://bucket/prefix/1/<run>/artifacts   (direct)
and the objects land at s3://bucket/prefix/1/<run>/artifacts/... in both modes, which is what a
server started with `--artifacts-destination s3://bucket/prefix` serves for mlflow-artifacts:/.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from migrate import locations
from migrate.errors import MigrationError
from migrate.identifiers import quote_ident
from migrate.progress import Progress
from migrate.s3 import s3_problem, split_s3_url

# Every column holding an artifact location in MLflow 3.17's schema: (table, column, only
# rows where <column> = <value>). Rows whose value is not under the old root are left as is
# (runs:/ and models:/ sources, s3:// locations, paths elsewhere).
LOCATION_COLUMNS: list[tuple[str, str, tuple[str, str] | None]] = [
    ("experiments", "artifact_location", None),
    ("runs", "artifact_uri", None),
    ("logged_models", "artifact_location", None),
    ("model_versions", "source", None),
    ("model_versions", "storage_location", None),
    ("trace_tags", "value", ("key", "mlflow.artifactLocation")),
    ("workspaces", "default_artifact_root", None),
    ("workspaces", "trace_archival_location", None),
]


@dataclass(frozen=True)
class Destination:
    bucket: str
    prefix: str  # no leading/trailing slash; "" for the bucket root
    mode: str  # "proxied" or "direct"

    @classmethod
    def parse(cls, url: str, mode: str) -> Destination:
        parsed = urlparse(url)
        if parsed.scheme != "s3" or not parsed.netloc:
            raise MigrationError(f"artifact destination must look like s3://bucket[/prefix], got {url!r}")
        return cls(bucket=parsed.netloc, prefix=parsed.path.strip("/"), mode=mode)

    @property
    def root_uri(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}".rstrip("/")

    def key(self, relative: str) -> str:
        return f"{self.prefix}/{relative}" if self.prefix else relative

    def uri(self, relative: str) -> str:
        if self.mode == "proxied":
            return "mlflow-artifacts:/" + relative
        return f"{self.root_uri}/{relative}" if relative else self.root_uri


class Rewriter:
    """Maps locations under the old root (as the database spells it) to the new store."""

    def __init__(self, recorded_root: str, destination: Destination, cwd: str = "/"):
        self.local = locations.LocalRoot(recorded_root, cwd)
        self.root = self.local.root
        self.destination = destination

    def where(self, uri) -> locations.Where | None:
        return self.local.where(uri)

    def relative(self, uri: str | None) -> str | None:
        """Path below the old root, "" for the root itself, None when not under it."""
        where = self.local.where(uri)
        return where.relative if where is not None and where.kind is locations.Kind.UNDER_ROOT else None

    def rewrite(self, uri):
        relative = self.relative(uri)
        return uri if relative is None else self.destination.uri(relative)

    def row_transform(self, table: str, columns: list[str]) -> Callable[[tuple], tuple] | None:
        """A function rewriting one source row of `table`, or None if nothing in it moves."""
        plans = []
        for t, column, condition in LOCATION_COLUMNS:
            if t != table or column not in columns:
                continue
            where = None
            if condition is not None:
                if condition[0] not in columns:
                    continue
                where = (columns.index(condition[0]), condition[1])
            plans.append((columns.index(column), where))
        if not plans:
            return None
        rewrite = self.rewrite

        def transform(row: tuple) -> tuple:
            values = list(row)
            for index, where in plans:
                if where is None or values[where[0]] == where[1]:
                    values[index] = rewrite(values[index])
            return tuple(values)

        return transform


# -- what changes --------------------------------------------------------------------------


@dataclass
class ColumnPlan:
    table: str
    column: str
    condition: tuple[str, str] | None
    rewritten: int = 0
    unchanged: int = 0
    # Local paths outside the root: they will not resolve on the new server.
    stranded: int = 0
    stranded_examples: tuple[str, ...] = ()
    # Other stores (s3:// of another bucket, http(s)://, file://otherhost/): not ours to map.
    remote: int = 0
    remote_examples: tuple[str, ...] = ()
    longest: int = 0

    @property
    def label(self) -> str:
        where = f" (where {self.condition[0]} = '{self.condition[1]}')" if self.condition else ""
        return f"{self.table}.{self.column}{where}"

    @property
    def unmapped(self) -> int:
        return self.stranded + self.remote


def location_query(
    table: str, column: str, condition: tuple[str, str] | None, key: list[str], placeholder: str = "?"
) -> tuple[str, tuple]:
    """SELECT <key...>, <column> of the rows holding a location; `placeholder` is the driver's
    ("?" for sqlite3, "%s" for psycopg2)."""
    selected = ", ".join(quote_ident(c) for c in [*key, column])
    query = f"SELECT {selected} FROM {quote_ident(table)} WHERE {quote_ident(column)} IS NOT NULL"
    params: tuple = ()
    if condition:
        query += f" AND {quote_ident(condition[0])} = {placeholder}"
        params = (condition[1],)
    return query, params


def plan_rewrites(conn: sqlite3.Connection, rewriter: Rewriter, tables: set[str]) -> list[ColumnPlan]:
    plans = []
    for table, column, condition in LOCATION_COLUMNS:
        if table not in tables:
            continue
        columns = [row[1] for row in conn.execute(f"PRAGMA table_info({quote_ident(table)})")]
        if column not in columns:
            continue
        plan = ColumnPlan(table, column, condition)
        query, params = location_query(table, column, condition, [])
        examples: dict[locations.Kind, list[str]] = {locations.Kind.LOCAL_OUTSIDE: [], locations.Kind.REMOTE: []}
        for (value,) in conn.execute(query, params):
            new = rewriter.rewrite(value)
            if new != value:
                plan.rewritten += 1
            else:
                plan.unchanged += 1
                where = rewriter.where(value)
                if where is not None and where.kind in examples:
                    if where.kind is locations.Kind.LOCAL_OUTSIDE:
                        plan.stranded += 1
                    else:
                        plan.remote += 1
                    if len(examples[where.kind]) < 3:
                        examples[where.kind].append(value)
            plan.longest = max(plan.longest, len(new) if isinstance(new, str) else 0)
        plan.stranded_examples = tuple(examples[locations.Kind.LOCAL_OUTSIDE])
        plan.remote_examples = tuple(examples[locations.Kind.REMOTE])
        plans.append(plan)
    return plans


# -- objects -------------------------------------------------------------------------------


def local_files(root: Path) -> dict[str, int]:
    """Relative POSIX path -> size of every file below `root`."""
    files = {}
    for directory, _dirs, names in os.walk(root):
        for name in names:
            path = Path(directory, name)
            if path.is_file():
                files[path.relative_to(root).as_posix()] = path.stat().st_size
    return files


def s3_files(client, bucket: str, prefix: str) -> dict[str, int]:
    """Relative path -> size of every object below s3://bucket/prefix (a staged artifact tree)."""
    base = prefix.strip("/") + "/" if prefix.strip("/") else ""
    found = {}
    try:
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=base):
            for item in page.get("Contents", []):
                if not item["Key"].endswith("/"):
                    found[item["Key"][len(base) :]] = item["Size"]
    except Exception as error:
        raise MigrationError(s3_problem(error, bucket)) from None
    return found


def check_bucket(client, destination: Destination) -> None:
    try:
        client.head_bucket(Bucket=destination.bucket)
    except Exception as error:
        raise MigrationError(s3_problem(error, destination.bucket)) from None


def existing_objects(client, destination: Destination) -> dict[str, int]:
    found = {}
    prefix = destination.key("") if destination.prefix else ""
    paginator = client.get_paginator("list_objects_v2")
    try:
        for page in paginator.paginate(Bucket=destination.bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                found[item["Key"]] = item["Size"]
    except Exception as error:
        raise MigrationError(s3_problem(error, destination.bucket)) from None
    return found


def upload_tree(
    client,
    root: Path | str,
    files: dict[str, int],
    destination: Destination,
    *,
    workers: int = 8,
    show_progress: bool = True,
) -> tuple[int, int]:
    """Copy what is not already there with the same size. Returns (copied, skipped).

    `root` is a local folder, or s3://bucket/prefix for a tree staged in S3 (copied
    server-side, nothing passes through this machine).
    """
    present = existing_objects(client, destination)
    todo = [rel for rel, size in files.items() if present.get(destination.key(rel)) != size]
    staged = split_s3_url(root) if isinstance(root, str) and root.startswith("s3://") else None
    progress = Progress(sum(files[rel] for rel in todo), "bytes", enabled=show_progress)

    def put(relative: str) -> None:
        try:
            if staged:
                key = f"{staged[1].strip('/')}/{relative}" if staged[1].strip("/") else relative
                # Managed copy: multipart above 8 MB, so objects over 5 GB work too.
                client.copy({"Bucket": staged[0], "Key": key}, destination.bucket, destination.key(relative))
            else:
                client.upload_file(str(Path(root) / relative), destination.bucket, destination.key(relative))
        except Exception as error:
            raise MigrationError(f"uploading {relative}: {s3_problem(error, destination.bucket)}") from None
        progress.advance(files[relative])

    try:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            for future in [pool.submit(put, rel) for rel in todo]:
                future.result()
    finally:
        progress.close()  # also on failure: the bar's line ends before the error is printed
    return len(todo), len(files) - len(todo)


def verify_tree(
    client, files: dict[str, int], destination: Destination, present: dict[str, int] | None = None
) -> list[str]:
    """Every local file is in the bucket with the same size (`present`: a listing already made)."""
    if present is None:
        present = existing_objects(client, destination)
    problems = []
    for relative, size in sorted(files.items()):
        key = destination.key(relative)
        if key not in present:
            problems.append(f"artifact missing in s3://{destination.bucket}/{key}")
        elif present[key] != size:
            problems.append(f"artifact s3://{destination.bucket}/{key} has {present[key]} bytes, local {size}")
    return problems
