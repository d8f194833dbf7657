"""What makes a PostgreSQL commit durable: the settings every PostgreSQL of the platform runs with.

The dev stack's container, the RDS parameter group and the end-to-end kit (testkit/postgres.py)
all take them from here, so the tests exercise a database exactly as durable as the one shipped:
a COMMIT is acknowledged only once its WAL is flushed (synchronous_commit), the flush reaches the
disk (fsync), and a page torn by a crash can be rebuilt from the WAL (full_page_writes).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

DURABLE_SETTINGS: Mapping[str, str] = MappingProxyType(
    {"fsync": "on", "synchronous_commit": "on", "full_page_writes": "on"}
)
# RDS fixes fsync and full_page_writes on (not modifiable in a parameter group: AWS refuses the
# group); synchronous_commit is the one a group can weaken, so the group states it.
RDS_SETTABLE = ("synchronous_commit",)

# What PostgreSQL reads as "on" for a boolean; synchronous_commit's values at least as strong as
# "on" (remote_apply also waits for a synchronous standby to apply).
_TRUE = {"on", "true", "yes", "1"}
_STRONG_COMMIT = {"on", "remote_apply"}


def postgres_flags() -> tuple[str, ...]:
    """`-c name=value` for each setting, for a `postgres` command line."""
    flags: list[str] = []
    for name, value in DURABLE_SETTINGS.items():
        flags += ["-c", f"{name}={value}"]
    return tuple(flags)


def weakened(values: Mapping[str, str]) -> list[str]:
    """The durability settings `values` sets to something weaker than DURABLE_SETTINGS (an
    absent one is PostgreSQL's default, on)."""
    found = []
    for name in DURABLE_SETTINGS:
        if name not in values:
            continue
        value = str(values[name]).strip().lower()
        if value not in (_STRONG_COMMIT if name == "synchronous_commit" else _TRUE):
            found.append(name)
    return found
