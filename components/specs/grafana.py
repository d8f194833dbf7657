"""Grafana for the dev stack: provisioned from observability/grafana, admin password from a file.

The repo's files are uploaded as content (the checkout's path is never mounted): the data source
and dashboard providers under /etc/grafana/provisioning, the dashboards where the provider reads
them (outside the data volume, so an edited dashboard is never shadowed by an old copy).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from components.specs.health import HealthCheck
from components.versions import REPO_ROOT

GRAFANA_DIR = REPO_ROOT / "observability" / "grafana"
PORT = 3000
ADMIN_USER = "admin"
# uid of `grafana` in the official image (its Dockerfile's GF_UID).
GRAFANA_UID = "472"
DATA_DIR = "/var/lib/grafana"
PROVISIONING_DIR = "/etc/grafana/provisioning"
# Where provisioning/dashboards/*.yml tells Grafana to read the dashboards (a unit test keeps them equal).
DASHBOARDS_DIR = "/etc/grafana/dashboards"
PASSWORD_FILE = "/run/secrets/grafana_admin_password"
ENTRYPOINT_PATH = "/usr/local/bin/mlflow-platform-grafana"

# The image's run.sh reads GF_SECURITY_ADMIN_PASSWORD__FILE, but Grafana applies the admin password
# only when it creates its database: a volume kept across `pulumi destroy` would meet a newly
# generated one. So on every start with an existing database the admin's password is reset from
# the file first (`grafana cli` reads it on stdin: never an argv), then the image's run.sh starts
# the server. A failed reset is logged and the server starts anyway.
ENTRYPOINT_SCRIPT = r"""#!/bin/bash
set -u
if [ -f "$GF_PATHS_DATA/grafana.db" ]; then
    grafana cli --homepath "$GF_PATHS_HOME" --config "$GF_PATHS_CONFIG" admin reset-admin-password \
        --password-from-stdin < "$GF_SECURITY_ADMIN_PASSWORD__FILE" > /dev/null \
        || echo "mlflow-platform: could not sync the admin password" >&2
fi
exec /run.sh "$@"
"""


@dataclass(frozen=True)
class GrafanaSpec:
    env: Mapping[str, str]
    files: tuple[tuple[str, str], ...]
    """(path in the container, content) of every provisioning file and dashboard of the repo."""
    health: HealthCheck
    port: int = PORT
    data_dir: str = DATA_DIR
    password_file: str = PASSWORD_FILE
    entrypoint: tuple[str, ...] = (ENTRYPOINT_PATH,)
    entrypoint_script: str = ENTRYPOINT_SCRIPT


def provisioned_files() -> tuple[tuple[str, str], ...]:
    """The repo's provisioning files and dashboards, at their paths in the container, sorted (a
    stable order keeps the container's uploads, and so the container, unchanged between runs)."""
    files = [
        (f"{PROVISIONING_DIR}/{path.relative_to(GRAFANA_DIR / 'provisioning').as_posix()}", path.read_text())
        for path in (GRAFANA_DIR / "provisioning").rglob("*.yml")
    ]
    files += [
        (f"{DASHBOARDS_DIR}/{path.name}", path.read_text()) for path in (GRAFANA_DIR / "dashboards").glob("*.json")
    ]
    return tuple(sorted(files))


def grafana_spec(root_url: str) -> GrafanaSpec:
    """`root_url`: where the browser opens it (the published loopback address)."""
    env = {
        "GF_SECURITY_ADMIN_USER": ADMIN_USER,
        "GF_SECURITY_ADMIN_PASSWORD__FILE": PASSWORD_FILE,
        "GF_SERVER_ROOT_URL": root_url,
        "GF_SERVER_HTTP_PORT": str(PORT),
        # Nobody but the admin: no sign-up, no anonymous viewer.
        "GF_USERS_ALLOW_SIGN_UP": "false",
        "GF_AUTH_ANONYMOUS_ENABLED": "false",
        "GF_SECURITY_DISABLE_GRAVATAR": "true",
        # A local tool phones nowhere and installs nothing at start.
        "GF_ANALYTICS_REPORTING_ENABLED": "false",
        "GF_ANALYTICS_CHECK_FOR_UPDATES": "false",
        "GF_ANALYTICS_CHECK_FOR_PLUGIN_UPDATES": "false",
        "GF_NEWS_NEWS_FEED_ENABLED": "false",
        "GF_PLUGINS_PREINSTALL_DISABLED": "true",
    }
    return GrafanaSpec(
        env=MappingProxyType(env),
        files=provisioned_files(),
        # The image installs curl; /api/health answers once the database is migrated.
        health=HealthCheck(
            command=("curl", "-fsS", "-o", "/dev/null", f"http://127.0.0.1:{PORT}/api/health"),
            start_period_seconds=60,
        ),
    )
