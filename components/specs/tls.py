"""The proxy's self-signed certificate: what the dev stack asks pulumi_tls for, and what the
e2e topology makes with `cryptography` so its nginx serves the same kind of certificate."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

# ECDSA P-256: what every TLS client accepts, and a small, fast key.
KEY_ALGORITHM = "ECDSA"
ECDSA_CURVE = "P256"
ORGANIZATION = "mlflow-platform"
VALIDITY_HOURS = 24 * 365
# Renewed by `pulumi up` in the last 30 days.
EARLY_RENEWAL_HOURS = 24 * 30
ALLOWED_USES = ("digital_signature", "key_encipherment", "server_auth")


def split_hostnames(hosts: Iterable[str]) -> tuple[list[str], list[str]]:
    """(IP addresses, DNS names) of `proxy.tlsHostnames`: a certificate lists them apart
    (iPAddress and dNSName subject alternative names) and a client checks the matching kind."""
    ips: list[str] = []
    names: list[str] = []
    for host in hosts:
        try:
            ips.append(str(ipaddress.ip_address(host)))
        except ValueError:
            names.append(host)
    return ips, names
