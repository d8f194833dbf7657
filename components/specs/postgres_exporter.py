"""postgres_exporter: how it signs in to the metadata database, for the dev container and the e2e.

It connects as its own role (contract.MONITOR_DB_ROLE: pg_monitor, created by the servers' boot
step) and reads that role's password from a file (DATA_SOURCE_PASS_FILE, which Debian's 0.11 and
the pinned image's 0.20 both read), never from its environment or command line.
"""

from __future__ import annotations

from components.specs.health import HealthCheck
from components.specs.prometheus import POSTGRES_EXPORTER_PORT

# In the dev container: readable by the image's user only (nobody).
PASSWORD_FILE = "/run/secrets/postgres_exporter_password"
EXPORTER_UID = "65534"


def exporter_env(host: str, port: int, database: str, user: str, *, password_file: str = PASSWORD_FILE,
                 sslmode: str = "disable") -> dict[str, str]:  # fmt: skip
    """The exporter's settings: where the database is, who signs in, where the password is."""
    return {
        "DATA_SOURCE_URI": f"{host}:{port}/{database}?sslmode={sslmode}",
        "DATA_SOURCE_USER": user,
        "DATA_SOURCE_PASS_FILE": password_file,
    }


def exporter_command(listen_host: str = "", port: int = POSTGRES_EXPORTER_PORT) -> tuple[str, ...]:
    """Its arguments: where it listens (every address of the container, by default)."""
    return (f"--web.listen-address={listen_host}:{port}",)


# busybox's wget on the landing page: the process answers (pg_up says whether the database does).
HEALTH = HealthCheck(command=("wget", "-q", "-O", "/dev/null", f"http://127.0.0.1:{POSTGRES_EXPORTER_PORT}/"))
