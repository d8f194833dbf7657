"""Byte sizes as users write them ("10g", "512m", "1.5G") and as nginx wants them."""

from __future__ import annotations

import re

_UNITS = {"": 1, "k": 1024, "m": 1024**2, "g": 1024**3, "t": 1024**4}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)(?:i?b)?\s*$", re.IGNORECASE)


def parse_size(value: str | int) -> int:
    """Parse a size into bytes. Units are binary (k = 1024), as in nginx."""
    if isinstance(value, bool):
        raise ValueError("expected a size like '10g', not a boolean")
    if isinstance(value, int):
        if value < 0:
            raise ValueError("a size cannot be negative")
        return value
    match = _SIZE.match(str(value))
    if not match:
        raise ValueError(f"'{value}' is not a size; use a number with an optional unit k, m, g or t (e.g. '10g')")
    number, unit = match.groups()
    size = float(number) * _UNITS[unit.lower()]
    if size != int(size):
        raise ValueError(f"'{value}' is not a whole number of bytes")
    return int(size)


def nginx_size(size_bytes: int) -> str:
    """The shortest exact nginx spelling of a size: 10737418240 -> '10g'."""
    for unit in ("g", "m", "k"):
        factor = _UNITS[unit]
        if size_bytes and size_bytes % factor == 0:
            return f"{size_bytes // factor}{unit}"
    return str(size_bytes)
