"""The origins a browser loads the UI from, which MLflow must accept as its own.

MLflow's security middleware refuses a state-changing API call (POST, PUT, PATCH, DELETE
under /api/ and /ajax-api/) whose `Origin` header is not localhost and not in
--cors-allowed-origins (mlflow/server/security_utils.py, should_block_cors_request). Browsers
send `Origin` on every POST, same-origin ones included, and the UI searches runs, traces and
datasets by POST: served under any other name, the UI loads but shows nothing. So the names
the stack itself serves the UI on are allowed as origins, and nothing else is added.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence

from components.config.docker import ProxySettings

DEFAULT_PORTS = {"http": 80, "https": 443}


def origin(scheme: str, host: str, port: int) -> str:
    """`scheme://host[:port]` as a browser writes it: the default port left out, IPv6 in brackets."""
    try:
        if ipaddress.ip_address(host).version == 6:
            host = f"[{host}]"
    except ValueError:
        pass
    return f"{scheme}://{host}" if DEFAULT_PORTS.get(scheme) == port else f"{scheme}://{host}:{port}"


def proxy_origins(proxy: ProxySettings) -> list[str]:
    """The dev proxy's origins: with TLS, each certificate name on the published port. Plain HTTP
    is published on loopback only, whose origins MLflow accepts anyway."""
    if not proxy.tls:
        return []
    return [origin("https", host, proxy.port) for host in proxy.tls_hostnames]


def load_balancer_origins(domain_name: str | None) -> list[str]:
    """The AWS load balancer's one origin: HTTPS on 443 under its domain name."""
    return [origin("https", domain_name, 443)] if domain_name else []


def merged(configured: Sequence[str], own: Sequence[str]) -> list[str]:
    """`tracking.corsAllowedOrigins` first, then the stack's own origins, each once."""
    return list(dict.fromkeys([*configured, *own]))
