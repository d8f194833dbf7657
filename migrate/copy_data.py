"""Rows from the source snapshot into the target's MLflow-made tables.

Data only: PostgreSQL COPY (text format) in batches, parents before children so every
foreign key is checked as rows arrive, all in one transaction: a failure leaves the target
as it was. Values are written in the target column's own type, which is where SQLite's
loose typing (0/1 booleans, integers in REAL columns, bytes in TEXT) gets settled.
"""

from __future__ import annotations

import io
import json
import math
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass

from psycopg2 import sql

from migrate.errors import MigrationError
from migrate.identifiers import quote_ident
from migrate.progress import Progress
from migrate.schema import Table

NULL = "\\N"
# COPY text format: backslash, tab, newline and carriage return must be escaped.
_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})
_TRUE = {"1", "t", "true", "y", "yes", "on"}


def _text(value) -> str:
    if value is None:
        return NULL
    if isinstance(value, bytes):
        value = value.decode("utf-8")
    elif not isinstance(value, str):
        value = str(value)
    if "\x00" in value:
        raise ValueError("text contains a NUL character, which PostgreSQL cannot store")
    return value.translate(_ESCAPES)


def _bool(value) -> str:
    if value is None:
        return NULL
    if isinstance(value, str):
        return "t" if value.strip().lower() in _TRUE else "f"
    return "t" if value else "f"


def _int(value) -> str:
    if value is None:
        return NULL
    if isinstance(value, float):
        if not value.is_integer():
            raise ValueError(f"{value!r} is not an integer")
        return str(int(value))
    return str(value) if isinstance(value, int) else _text(value)


def _float(value) -> str:
    if value is None:
        return NULL
    if isinstance(value, str):
        return _text(value)
    number = float(value)
    if math.isnan(number):
        return "NaN"
    if math.isinf(number):
        return "Infinity" if number > 0 else "-Infinity"
    return repr(number)  # shortest repr that round-trips: no precision lost


def _json(value) -> str:
    if value is None or isinstance(value, (str, bytes)):
        return _text(value)
    return _text(json.dumps(value))


def _bytea(value) -> str:
    if value is None:
        return NULL
    if isinstance(value, str):
        value = value.encode("utf-8")
    return "\\\\x" + bytes(value).hex()  # \x<hex>, its backslash escaped for COPY


FORMATTERS: dict[str, Callable[[object], str]] = {
    "bool": _bool,
    "int2": _int,
    "int4": _int,
    "int8": _int,
    "float4": _float,
    "float8": _float,
    "numeric": _float,
    "json": _json,
    "jsonb": _json,
    "bytea": _bytea,
}


def formatter(type_name: str) -> Callable[[object], str]:
    return FORMATTERS.get(type_name, _text)


@dataclass
class TablePlan:
    name: str
    columns: list[str]
    rows: int
    transform: Callable[[tuple], tuple] | None = None


def check_lengths(conn: sqlite3.Connection, plans: list[TablePlan], target: dict[str, Table]) -> list[str]:
    """Values longer than their PostgreSQL varchar(n): SQLite never enforced n."""
    problems = []
    for plan in plans:
        bounded = [c for c in target[plan.name].columns if c.max_length and c.name in plan.columns]
        if not bounded or not plan.rows:
            continue
        select = ", ".join(f"max(length({quote_ident(c.name)}))" for c in bounded)
        longest = conn.execute(f"SELECT {select} FROM {quote_ident(plan.name)}").fetchone()
        for column, length in zip(bounded, longest, strict=True):
            if length and length > column.max_length:
                problems.append(
                    f"{plan.name}.{column.name}: a value has {length} characters, "
                    f"the target column allows {column.max_length}"
                )
    return problems


def copy_table(
    source: sqlite3.Connection, cursor, plan: TablePlan, table: Table, batch_size: int, progress: Progress
) -> int:
    formats = [formatter(table.column(c).type_name) for c in plan.columns]
    select = f"SELECT {', '.join(quote_ident(c) for c in plan.columns)} FROM {quote_ident(plan.name)}"
    copy = sql.SQL("COPY {} ({}) FROM STDIN").format(
        sql.Identifier(plan.name), sql.SQL(", ").join(map(sql.Identifier, plan.columns))
    )
    transform = plan.transform
    reader = source.execute(select)
    copied = 0
    while True:
        rows = reader.fetchmany(batch_size)
        if not rows:
            break
        if transform is not None:
            rows = [transform(row) for row in rows]
        try:
            lines = ["\t".join([f(v) for f, v in zip(formats, row, strict=True)]) for row in rows]
        except (ValueError, UnicodeDecodeError) as error:
            raise MigrationError(f"table {plan.name}: a row cannot be written to PostgreSQL: {error}") from None
        buffer = io.StringIO("\n".join(lines) + "\n")
        try:
            cursor.copy_expert(copy.as_string(cursor), buffer)
        except Exception as error:
            raise MigrationError(f"copying table {plan.name} failed: {str(error).strip()}") from None
        copied += len(rows)
        progress.advance(len(rows), plan.name)
    return copied


def truncate(cursor, names: list[str]) -> None:
    """Empty every table we are about to fill, in one statement (FKs among them are fine).

    No CASCADE: a table we do not own that points at MLflow's makes this fail, not vanish.
    """
    if names:
        cursor.execute(sql.SQL("TRUNCATE {}").format(sql.SQL(", ").join(map(sql.Identifier, names))))
