"""The copy plan, decided before anything is written: which tables, in which order, with which
columns, and whether the source's rows fit the target (parents present, values within their
column's length, artifact locations that can be rewritten).

The target's side comes from its catalog (migrate.schema.target_catalog). When the target has
no schema yet (a dry run), the lengths come from the source's own DDL instead: after alignment
it is at the same revision, so it declares the same VARCHAR(n) the target will get.
"""

from __future__ import annotations

import os
import re
import sqlite3
from collections.abc import Callable
from urllib.parse import unquote, urlparse

from migrate import artifacts, copy_data, reachability, schema, source
from migrate.errors import MigrationError
from migrate.identifiers import quote_ident

# A column type SQLite stores as declared: "VARCHAR(250)", "character varying (32)".
_VARCHAR = re.compile(r"\s*(?:VARCHAR|CHARACTER VARYING)\s*\(\s*(\d+)\s*\)", re.I)


def table_plans(
    conn: sqlite3.Connection, catalog: dict[str, schema.Table] | None, rewriter: artifacts.Rewriter | None
) -> list[copy_data.TablePlan]:
    """What to copy: MLflow's tables (those of the aligned source), in foreign-key order.

    With the target's `catalog` the columns are the target's, and a table or column the two
    sides do not share is an error; without it (no target schema yet) the source's.
    """
    names = set(source.sqlite_tables(conn)) - schema.NOT_COPIED
    if catalog is not None:
        missing = sorted(names - set(catalog))
        if missing:
            raise MigrationError(f"tables of the source are missing in the target schema: {', '.join(missing)}")
    counts = source.row_counts(conn, sorted(names))
    order = schema.foreign_key_order(catalog, names) if catalog is not None else sorted(names)
    plans = []
    for name in order:
        src_columns = source.sqlite_columns(conn, name)
        if catalog is not None:
            columns = [c.name for c in catalog[name].columns]
            lacking = [c for c in columns if c not in src_columns]
            extra = [c for c in src_columns if c not in columns]
            if lacking or extra:
                raise MigrationError(
                    f"table {name} differs between source and target after alignment "
                    f"(only in target: {lacking}, only in source: {extra})"
                )
        else:
            columns = src_columns
        transform = rewriter.row_transform(name, columns) if rewriter else None
        plans.append(copy_data.TablePlan(name, columns, counts[name], transform))
    return plans


def declared_catalog(conn: sqlite3.Connection) -> dict[str, schema.Table]:
    """Column lengths as the source's DDL declares them (PRAGMA table_info), for the length
    checks when the target has no schema yet. Only names and VARCHAR(n) limits are filled in."""
    tables = {}
    for name in source.sqlite_tables(conn):
        table = schema.Table(name)
        for _cid, column, declared, *_ in conn.execute(f"PRAGMA table_info({quote_ident(name)})"):
            match = _VARCHAR.match(declared or "")
            table.columns.append(
                schema.Column(
                    column, "varchar" if match else "", declared or "", int(match.group(1)) if match else None
                )
            )
        tables[name] = table
    return tables


def check_fit(
    conn: sqlite3.Connection,
    plans: list[copy_data.TablePlan],
    lengths_from: dict[str, schema.Table],
    rewriter: artifacts.Rewriter | None,
    warn: Callable[[str], None],
    keep_unmapped: bool = False,
) -> list[artifacts.ColumnPlan]:
    """Every reason PostgreSQL would refuse the rows, found up front and raised together as one
    MigrationError; otherwise the artifact-location rewrites, per column, for the report."""
    try:
        orphans = source.foreign_key_orphans(conn)
    except sqlite3.DatabaseError as error:
        orphans = {}
        warn(f"warning: cannot check the source's foreign keys: {error}")
    problems = [f"{child}: {n} row(s) pointing at missing {parent}" for (child, parent), n in sorted(orphans.items())]
    if problems:
        problems.insert(
            0, "rows whose parent is gone (SQLite does not enforce foreign keys; PostgreSQL will refuse them):"
        )
    lengths = copy_data.check_lengths(conn, plans, lengths_from)
    column_plans = []
    if rewriter is not None:
        column_plans = artifacts.plan_rewrites(conn, rewriter, {p.name for p in plans})
        for cp in column_plans:
            limit = lengths_from.get(cp.table)
            max_length = next((c.max_length for c in limit.columns if c.name == cp.column), None) if limit else None
            if max_length and cp.longest > max_length:
                lengths.append(
                    f"{cp.table}.{cp.column}: a rewritten location has {cp.longest} characters, "
                    f"the column allows {max_length} (use a shorter destination prefix)"
                )
    if lengths:
        problems += ["values longer than their column (SQLite ignores VARCHAR(n); PostgreSQL does not):"] + lengths
    if (
        rewriter is not None
        and column_plans
        and not any(cp.rewritten for cp in column_plans)
        and any(cp.stranded for cp in column_plans)
    ):
        problems.append(wrong_root_hint(column_plans, rewriter.root))
    else:
        unmapped = [cp for cp in column_plans if cp.unmapped]
        if unmapped and not keep_unmapped:
            problems.append(
                "locations this tool cannot map; they would not resolve on the new server. Move those "
                f"artifacts under the root and fix the rows in a copy, or pass {reachability.KEEP_FLAG} "
                "to copy them as they are:"
            )
            problems += unmapped_lines(unmapped)
    if problems:
        raise MigrationError(
            "the source does not fit the target; nothing was written. Fix these in a copy "
            "of the source, then run again:\n  " + "\n  ".join(problems)
        )
    return column_plans


def wrong_root_hint(column_plans: list[artifacts.ColumnPlan], root: str) -> str:
    """Not one location under the root: the folder moved, so say what the database recorded."""
    examples = [e for cp in column_plans for e in cp.stranded_examples]
    hint = ""
    experiment = next((e for cp in column_plans if cp.table == "experiments" for e in cp.stranded_examples), None)
    if experiment:
        path = unquote(urlparse(experiment).path) if experiment.startswith("file:") else experiment
        head, tail = os.path.split(path.rstrip("/"))
        if tail.isdigit():  # <root>/<experiment_id>
            hint = f"; pass --recorded-artifact-root {head}"
    return f"no stored artifact location is under {root}: the database records e.g. {examples[0]}{hint}"


def unmapped_lines(column_plans: list[artifacts.ColumnPlan]) -> list[str]:
    lines = []
    for cp in column_plans:
        if cp.stranded:
            lines.append(
                f"  {cp.label}: {cp.stranded} local path(s) outside the artifact root, "
                f"e.g. {', '.join(cp.stranded_examples)}"
            )
        if cp.remote:
            lines.append(f"  {cp.label}: {cp.remote} in another store, e.g. {', '.join(cp.remote_examples)}")
    return lines
