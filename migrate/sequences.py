"""Serial and identity columns: after an explicit-id copy their sequences still say 1, and the
first new experiment would collide with experiment 1. Each is moved past the highest id."""

from __future__ import annotations

from psycopg2 import sql

_SERIAL_COLUMNS = """
SELECT c.relname, a.attname, pg_get_serial_sequence(quote_ident(n.nspname) || '.' || quote_ident(c.relname), a.attname)
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped
  AND pg_get_serial_sequence(quote_ident(n.nspname) || '.' || quote_ident(c.relname), a.attname) IS NOT NULL
ORDER BY 1, 2
"""


def reset_sequences(cursor, tables: set[str], floors: dict[str, int] | None = None) -> dict[str, int]:
    """Set each sequence of `tables` so its next value is above every id in use.

    `floors` are SQLite AUTOINCREMENT high-water marks: ids of rows deleted since are not
    handed out again, as SQLite would not have either. Returns table.column -> next value.
    """
    floors = floors or {}
    cursor.execute(_SERIAL_COLUMNS)
    result = {}
    for table, column, sequence in cursor.fetchall():
        if table not in tables:
            continue
        cursor.execute(sql.SQL("SELECT max({}) FROM {}").format(sql.Identifier(column), sql.Identifier(table)))
        highest = max(cursor.fetchone()[0] or 0, floors.get(table, 0))
        # is_called=false: nextval() returns exactly highest + 1.
        cursor.execute("SELECT setval(%s, %s, false)", (sequence, highest + 1))
        result[f"{table}.{column}"] = highest + 1
    return result
