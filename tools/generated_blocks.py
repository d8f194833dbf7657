"""Docs sections written by a tool between two marker comments, so they cannot drift from the code
(the config reference, the policy rule table). Each tool names its blocks; this module finds them,
replaces them and checks them."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from pathlib import Path

BEGIN = "<!-- BEGIN generated {block} ({tool}) -->"
END = "<!-- END generated {block} -->"


def replace_block(text: str, block: str, tool: str, lines: Iterable[str], where: str) -> str:
    """`text` with the lines between `block`'s markers replaced by `lines`."""
    begin, end = BEGIN.format(block=block, tool=tool), END.format(block=block)
    if begin not in text or end not in text:
        raise SystemExit(f"{where} has no {begin!r} ... {end!r} markers")
    head, rest = text.split(begin, 1)
    _, tail = rest.split(end, 1)
    return "\n".join([head + begin, *lines, end]) + tail


def write_or_check(files: Mapping[Path, str], *, check: bool, tool: str, root: Path) -> int:
    """Rewrite each file whose text differs (or, with `check`, only report them): the exit code."""
    stale = [path for path, text in files.items() if path.read_text() != text]
    if check and stale:
        names = ", ".join(str(path.relative_to(root)) for path in stale)
        print(f"out of date: {names}; run python -m {tool}", file=sys.stderr)
        return 1
    for path in stale:
        path.write_text(files[path])
    return 0
