"""After the copy: same row count in every table, the same values in a sample of rows (looked
up by primary key and compared column by column, after the artifact-location rewrite), and no
sequence that would hand out an id already in use."""

from __future__ import annotations

import datetime
import json
import math
import sqlite3
from collections.abc import Callable

from psycopg2 import sql
from psycopg2.extras import execute_values

from migrate.copy_data import TablePlan
from migrate.identifiers import quote_ident
from migrate.schema import Table
from migrate.sequences import _SERIAL_COLUMNS

_TRUE = {"1", "t", "true", "y", "yes", "on"}


def _norm_text(value):
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return value if isinstance(value, str) else str(value)


def _norm_bool(value):
    return value.strip().lower() in _TRUE if isinstance(value, str) else bool(value)


def _norm_int(value):
    return int(value) if not isinstance(value, str) else int(value.strip())


def _norm_float(value):
    number = float(value)
    return "NaN" if math.isnan(number) else number  # NaN != NaN would defeat comparison


def _norm_json(value):
    if isinstance(value, (bytes, str)):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _norm_bytes(value):
    return value.encode("utf-8") if isinstance(value, str) else bytes(value)


def _norm_date(value):
    return value.isoformat() if isinstance(value, (datetime.date, datetime.datetime)) else str(value)


_NORMALIZERS: dict[str, Callable] = {
    "bool": _norm_bool,
    "int2": _norm_int,
    "int4": _norm_int,
    "int8": _norm_int,
    "float4": _norm_float,
    "float8": _norm_float,
    "numeric": _norm_float,
    "json": _norm_json,
    "jsonb": _norm_json,
    "bytea": _norm_bytes,
    "date": _norm_date,
    "timestamp": _norm_date,
    "timestamptz": _norm_date,
}


def _normalizer(type_name: str) -> Callable:
    inner = _NORMALIZERS.get(type_name, _norm_text)
    return lambda value: None if value is None else inner(value)


def _show(value) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _compare_sample(
    source: sqlite3.Connection, cursor, plan: TablePlan, table: Table, sample: int, problems: list[str]
) -> int:
    if not table.primary_key or not set(table.primary_key) <= set(plan.columns):
        return 0  # MLflow's tables all have one; without it rows cannot be paired up
    columns = plan.columns
    norms = [_normalizer(table.column(c).type_name) for c in columns]
    select = f"SELECT {', '.join(quote_ident(c) for c in columns)} FROM {quote_ident(plan.name)}"
    if sample > 0:
        select += f" ORDER BY random() LIMIT {int(sample)}"
    key_index = [columns.index(c) for c in table.primary_key]
    expected = {}
    for row in source.execute(select):
        if plan.transform is not None:
            row = plan.transform(row)
        values = tuple(n(v) for n, v in zip(norms, row, strict=True))
        expected[tuple(values[i] for i in key_index)] = values
    if not expected:
        return 0
    query = (
        sql.SQL("SELECT {} FROM {} WHERE ({}) IN (VALUES %s)")
        .format(
            sql.SQL(", ").join(map(sql.Identifier, columns)),
            sql.Identifier(plan.name),
            sql.SQL(", ").join(map(sql.Identifier, table.primary_key)),
        )
        .as_string(cursor)
    )
    # Typed placeholders: an untyped 0.1 would be compared as numeric, not double precision.
    template = "(" + ", ".join(f"%s::{table.column(c).sql_type}" for c in table.primary_key) + ")"
    found = execute_values(cursor, query, list(expected), template=template, page_size=500, fetch=True)
    actual = {}
    for row in found:
        values = tuple(n(v) for n, v in zip(norms, row, strict=True))
        actual[tuple(values[i] for i in key_index)] = values
    bad = 0
    for key, want in expected.items():
        got = actual.get(key)
        if got is None:
            message = f"{plan.name}: row {_show(key)} is missing in the target"
        elif got != want:
            column = next(i for i, (a, b) in enumerate(zip(want, got, strict=True)) if a != b)
            message = (
                f"{plan.name}: row {_show(key)} differs in {columns[column]}: "
                f"source {_show(want[column])}, target {_show(got[column])}"
            )
        else:
            continue
        bad += 1
        if bad <= 5:
            problems.append(message)
    if bad > 5:
        problems.append(f"{plan.name}: {bad - 5} more differing rows in the sample")
    return len(expected)


def verify(
    source: sqlite3.Connection, cursor, plans: list[TablePlan], target: dict[str, Table], sample: int = 1000
) -> tuple[list[str], dict[str, int]]:
    """Returns (problems, rows compared per table); `sample` <= 0 compares every row."""
    problems: list[str] = []
    compared: dict[str, int] = {}
    for plan in plans:
        want = source.execute(f"SELECT count(*) FROM {quote_ident(plan.name)}").fetchone()[0]
        cursor.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(plan.name)))
        got = cursor.fetchone()[0]
        if got != want:
            problems.append(f"{plan.name}: {want} rows in the source, {got} in the target")
        compared[plan.name] = _compare_sample(source, cursor, plan, target[plan.name], sample, problems)
    problems += _check_sequences(cursor, {p.name for p in plans})
    return problems, compared


def _check_sequences(cursor, tables: set[str]) -> list[str]:
    problems = []
    cursor.execute(_SERIAL_COLUMNS)
    for table, column, sequence in cursor.fetchall():
        if table not in tables:
            continue
        cursor.execute(sql.SQL("SELECT max({}) FROM {}").format(sql.Identifier(column), sql.Identifier(table)))
        highest = cursor.fetchone()[0]
        cursor.execute(sql.SQL("SELECT last_value, is_called FROM {}").format(sql.SQL(sequence)))
        last, called = cursor.fetchone()
        next_value = last + 1 if called else last
        if highest is not None and next_value <= highest:
            problems.append(
                f"sequence {sequence} would next give {next_value}, but {table}.{column} "
                f"already holds {highest}: new rows would collide"
            )
    return problems
