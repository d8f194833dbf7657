"""Quoting table and column names for the SQL we build as text (the SQLite side; PostgreSQL
statements use psycopg2.sql.Identifier)."""

from __future__ import annotations


def quote_ident(name: str) -> str:
    """`name` as a double-quoted SQL identifier, embedded quotes doubled."""
    return '"' + name.replace('"', '""') + '"'
