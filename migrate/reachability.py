"""Whether every stored artifact location resolves on the new server, not merely whether the files
were uploaded.

For each row holding a location (migrate.artifacts.LOCATION_COLUMNS), the source value says
which files of the old tree it named (resolved with the old root and working directory); the
target value is resolved the way the new server does it, independently of the rewrite:
    proxied: mlflow-artifacts:/<path>  -> s3://<bucket>/<prefix>/<path>  (the server's
             --artifacts-destination; a mlflow-artifacts://host/ form would send clients to
             another server, so it does not count)
    direct:  s3://<bucket>/<key>       -> that object, in the destination bucket
Every file the source location named must exist at the resolved key with its size. The same
check runs before writing (on the planned values and the planned uploads) and after the copy
(on the target's rows and the bucket's listing).
"""

from __future__ import annotations

import bisect
import random
import sqlite3
from dataclasses import dataclass, field
from urllib.parse import unquote, urlparse

from migrate import locations
from migrate.artifacts import LOCATION_COLUMNS, Destination, Rewriter, location_query
from migrate.identifiers import quote_ident

KEEP_FLAG = "--keep-unmapped-locations"


@dataclass
class Report:
    checked: int = 0  # locations under the root whose files were all found where the server looks
    registry: int = 0  # models:/ and runs:/ references (resolved through the rows checked here)
    kept: int = 0  # unmappable locations left as they are because KEEP_FLAG was given
    sampled: bool = False
    problems: list[str] = field(default_factory=list)


def server_key(value: object, destination: Destination) -> str | None:
    """The object key the new server reads for a stored location, or None if it reads none."""
    if not isinstance(value, str):
        return None
    parsed = urlparse(value)
    if destination.mode == "proxied":
        if parsed.scheme != "mlflow-artifacts" or parsed.netloc:
            return None
        return destination.key(unquote(parsed.path).strip("/")).rstrip("/")
    if parsed.scheme != "s3" or parsed.netloc != destination.bucket:
        return None
    key = parsed.path.strip("/")
    prefix = destination.prefix
    if prefix and key != prefix and not key.startswith(prefix + "/"):
        return None  # in the bucket, but outside the server's artifact root
    return key


def _below(sorted_paths: list[str], base: str) -> list[str]:
    """Paths equal to `base` or below it ("" = all), from a sorted list."""
    if not base:
        return sorted_paths
    found = [base] if _contains(sorted_paths, base) else []
    start = bisect.bisect_left(sorted_paths, base + "/")
    for path in sorted_paths[start:]:
        if not path.startswith(base + "/"):
            break
        found.append(path)
    return found


def _contains(sorted_paths: list[str], path: str) -> bool:
    index = bisect.bisect_left(sorted_paths, path)
    return index < len(sorted_paths) and sorted_paths[index] == path


def primary_key(conn: sqlite3.Connection, table: str) -> list[str]:
    rows = conn.execute(f"PRAGMA table_info({quote_ident(table)})").fetchall()
    return [row[1] for row in sorted((r for r in rows if r[5]), key=lambda r: r[5])]


def _location_columns(conn: sqlite3.Connection, tables: set[str]):
    """(table, column, condition, primary key) of each location column the (aligned) source has."""
    for table, column, condition in LOCATION_COLUMNS:
        if table not in tables:
            continue
        columns = [row[1] for row in conn.execute(f"PRAGMA table_info({quote_ident(table)})")]
        key = primary_key(conn, table)
        if column in columns and key:
            yield table, column, condition, key


def source_locations(conn: sqlite3.Connection, tables: set[str]) -> dict[tuple[str, str], dict[tuple, object]]:
    """(table, column) -> {primary key: location} of the (aligned) source."""
    found = {}
    for table, column, condition, key in _location_columns(conn, tables):
        query, params = location_query(table, column, condition, key)
        found[(table, column)] = {tuple(row[:-1]): row[-1] for row in conn.execute(query, params)}
    return found


def target_locations(cursor, conn: sqlite3.Connection, tables: set[str]) -> dict[tuple[str, str], dict[tuple, object]]:
    """The same, read from the target (keys as text, as the source's may be typed differently)."""
    found = {}
    for table, column, condition, key in _location_columns(conn, tables):
        query, params = location_query(table, column, condition, key, placeholder="%s")
        cursor.execute(query, params)
        found[(table, column)] = {tuple(str(v) for v in row[:-1]): row[-1] for row in cursor.fetchall()}
    return found


def planned_locations(
    source: dict[tuple[str, str], dict[tuple, object]], rewriter: Rewriter
) -> dict[tuple[str, str], dict[tuple, object]]:
    """What the target will hold: the source rewritten (keys as text, like target_locations)."""
    return {
        column: {tuple(str(v) for v in key): rewriter.rewrite(value) for key, value in rows.items()}
        for column, rows in source.items()
    }


def check(
    source: dict[tuple[str, str], dict[tuple, object]],
    target: dict[tuple[str, str], dict[tuple, object]],
    rewriter: Rewriter,
    files: dict[str, int],
    objects: dict[str, int],
    *,
    keep_unmapped: bool,
    limit: int,
    seed: int | None = None,
) -> Report:
    """`files`: relative path -> size of the old tree; `objects`: key -> size in the destination
    bucket. `limit` locations per column at most (a random sample beyond it); 0 = all."""
    report = Report()
    destination = rewriter.destination
    sorted_files = sorted(files)
    chooser = random.Random(seed)
    problem = report.problems.append

    for (table, column), rows in source.items():
        items = list(rows.items())
        if limit > 0 and len(items) > limit:
            items = chooser.sample(items, limit)
            report.sampled = True
        landed = target.get((table, column), {})
        for key, old in items:
            where = rewriter.where(old)
            if where is None:
                continue
            label = f"{table}.{column} of {'/'.join(str(k) for k in key)}"
            new = landed.get(tuple(str(k) for k in key), None)
            if where.kind is locations.Kind.REGISTRY:
                report.registry += 1
                continue
            if where.kind in locations.UNMAPPABLE:
                if keep_unmapped and new == old:
                    report.kept += 1
                else:
                    problem(f"{label}: {old!r} is {where.kind.value} and will not resolve on the new server")
                continue
            assert where.relative is not None, "UNDER_ROOT always carries its relative path"
            resolved = server_key(new, destination)
            if resolved is None:
                problem(f"{label}: stored as {new!r}, which the new server does not resolve (was {old!r})")
                continue
            missing = []
            for path in _below(sorted_files, where.relative):
                below = path[len(where.relative) :].lstrip("/")
                object_key = f"{resolved}/{below}".strip("/") if below else resolved
                if objects.get(object_key) != files[path]:
                    missing.append(object_key)
            if missing:
                problem(
                    f"{label}: {new!r} names {len(missing)} file(s) not in s3://{destination.bucket}/ "
                    f"with their size, e.g. {missing[0]}"
                )
            else:
                report.checked += 1
    return report
