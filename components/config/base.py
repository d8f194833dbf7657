"""Building blocks shared by the docker and aws settings models."""

from __future__ import annotations

import fnmatch
import ipaddress
import re
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field
from pydantic.alias_generators import to_camel

from components.sizes import parse_size
from components.versions import MINIMUM_SAFE_MLFLOW, pinned_mlflow_version, version_tuple
from images.mlflow.server_contract import MONITOR_DB_ROLE, SERVER_DB_ROLE


class ConfigModel(BaseModel):
    """Stack config section: camelCase keys as written in YAML, unknown keys rejected."""

    # A field's docstring is its description: the config reference is generated from them
    # (python -m tools.config_reference; tests/unit/test_config_reference.py).
    model_config = ConfigDict(extra="forbid", alias_generator=to_camel, frozen=True, use_attribute_docstrings=True)


# Hosts no pattern of ours should ever accept: a pattern matching one of these matches anything.
_FOREIGN_HOSTS = ("attacker.invalid", "a.b.attacker.invalid:8443", "203.0.113.7", "[2001:db8::7]:80")


def _check_host_pattern(value: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9.\-*?\[\]:]+", value):
        raise ValueError(f"'{value}' is not a host name, address or host:port pattern")
    value = value.lower()
    # MLflow matches with fnmatch: '*', '**', '*.*', '?*' ... would all switch the check off.
    if "*" in value or "?" in value or "[" in value:
        if any(fnmatch.fnmatch(host, value) for host in _FOREIGN_HOSTS):
            raise ValueError(
                f"'{value}' matches any host, which switches MLflow's host check off; list the host names clients use"
            )
    return value


def _check_cors_origin(value: str) -> str:
    if not re.fullmatch(r"https?://[A-Za-z0-9.\-]+(:\d{1,5})?", value):
        raise ValueError(f"'{value}' is not an origin like https://mlflow.example.com (no wildcards, no path)")
    return value


def _check_bucket_name(value: str) -> str:
    # The S3 naming rules; MinIO enforces the same ones.
    if not re.fullmatch(r"[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]", value) or ".." in value:
        raise ValueError(
            f"'{value}' is not a valid bucket name: 3-63 lowercase letters, digits, dots or hyphens, "
            "starting and ending with a letter or digit"
        )
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return value
    raise ValueError("a bucket name cannot look like an IP address")


def _check_identifier(value: str) -> str:
    # RDS wants a leading letter; 57 leaves room for the basic-auth database `<name>_auth`.
    if not re.fullmatch(r"[a-z][a-z0-9_]{0,56}", value):
        raise ValueError(
            f"'{value}' must be a lowercase identifier: a letter, then letters, digits or _ (at most 57 characters)"
        )
    return value


def _check_mlflow_version(value: str) -> str:
    pinned = pinned_mlflow_version()
    if value != pinned:
        raise ValueError(
            f"the MLflow image is built from images/mlflow/requirements.txt, which pins {pinned}; "
            f"to run {value}, change the pin there (make lock-image) rather than the stack config"
        )
    if version_tuple(value) < version_tuple(MINIMUM_SAFE_MLFLOW):
        raise ValueError(f"MLflow {value} has known server advisories; use {MINIMUM_SAFE_MLFLOW} or later")
    return value


def _check_pinned_image(value: str) -> str:
    name, _, tag = value.rpartition(":") if "@" not in value else (value, "", "digest")
    if "@" in value:
        if not re.fullmatch(r"[^@\s]+@sha256:[0-9a-f]{64}", value):
            raise ValueError(f"'{value}' is not an image@sha256:<64 hex digits> reference")
    elif not name or "/" in tag or not tag or tag == "latest":
        raise ValueError(f"'{value}' is not pinned: give an explicit tag (name:tag, not latest) or a digest")
    return value


HostPattern = Annotated[str, AfterValidator(_check_host_pattern)]
CorsOrigin = Annotated[str, AfterValidator(_check_cors_origin)]
BucketName = Annotated[str, AfterValidator(_check_bucket_name)]
SqlIdentifier = Annotated[str, AfterValidator(_check_identifier)]


def _check_owner_role(value: str) -> str:
    if value == SERVER_DB_ROLE:
        raise ValueError(f"'{SERVER_DB_ROLE}' is the servers' own limited role: the owner needs another name")
    if value == MONITOR_DB_ROLE:
        raise ValueError(f"'{MONITOR_DB_ROLE}' is the metrics exporter's own role: the owner needs another name")
    return value


OwnerRole = Annotated[SqlIdentifier, AfterValidator(_check_owner_role)]
Port = Annotated[int, Field(ge=1, le=65535)]
ByteSize = Annotated[int, BeforeValidator(parse_size), Field(ge=1024 * 1024)]
PinnedImage = Annotated[str, AfterValidator(_check_pinned_image)]
MlflowVersion = Annotated[str, AfterValidator(_check_mlflow_version)]


class TrackingSettings(ConfigModel):
    """The MLflow tracking server, whatever it runs on."""

    mlflow_version: MlflowVersion = Field(default_factory=pinned_mlflow_version)
    """the `mlflow==` pin of images/mlflow/requirements.txt, which the image is built from: must equal it, and be ≥ 3.17.0 (known advisories)"""
    # uvicorn worker processes per server.
    workers: int = Field(default=2, ge=1, le=32)
    """uvicorn workers per server (1-32)"""
    # Server instances (containers or ECS tasks) sharing one database.
    replicas: int = Field(default=1, ge=1, le=20)
    """server containers / ECS tasks sharing one database (prod requires ≥ 2 and defaults to 2)"""
    # proxied: clients upload through MLflow (--serve-artifacts); direct: clients use S3 themselves.
    artifacts: Literal["proxied", "direct"] = "proxied"
    """`proxied`: clients upload through MLflow (`--serve-artifacts`); `direct`: clients use S3 themselves (AWS only)"""
    # Host headers MLflow accepts (its DNS-rebinding protection); nginx forwards the bare host name.
    allowed_hosts: list[HostPattern] = Field(default_factory=lambda: ["localhost", "127.0.0.1"], min_length=1)
    """Host headers MLflow accepts (its DNS-rebinding protection); patterns that match any host (`*`, `*.*`, `?*`...) are refused. On AWS the default is `[loadBalancer.domainName]`"""
    cors_allowed_origins: list[CorsOrigin] = Field(default_factory=list)
    """exact origins (`https://host[:port]`) allowed to call the API from a browser, besides the stack's own (the TLS proxy's names, the load balancer's domain), which are always allowed; no wildcards"""
    # MLflow's server jobs (scorers, evaluation, prompt optimization, periodic online scoring) on a
    # Redis queue every replica consumes; one server schedules the periodic tasks.
    job_execution: bool = True
    """MLflow's server jobs (scorers, online evaluation, prompt optimization) on a Redis queue every server consumes, one of them scheduling the periodic tasks; `false`: no Redis, no job processes"""
    # MLflow 3.10+'s workspaces: off by default, since it changes the URLs users see.
    workspaces: bool = False
    """`--enable-workspaces`: experiments, registered models and prompts isolated per workspace (with `basic-auth`, permissions per workspace); clients that name no workspace use `default`. Changes the URLs users see"""

    def semantic_problems(self) -> list[tuple[str, str]]:
        """Rules across tracking keys, as (key path, reason); both targets include these."""
        return []


def _check_gc_age(value: str) -> str:
    # MLflow's own form (mlflow/cli/__init__.py, gc: --older-than "#d#h#m#s", floats allowed),
    # minus what its regex also lets through: an empty string (which MLflow reads as 0) and "1.2.3d".
    number = r"\d+(?:\.\d+)?"
    if not re.fullmatch(rf"(?:{number}d)?(?:{number}h)?(?:{number}m)?(?:{number}s)?", value) or not value:
        raise ValueError(
            f"'{value}' is not an age like 30d, 12h, 1d12h or 0s (days, hours, minutes, seconds, in that order)"
        )
    return value


GcAge = Annotated[str, AfterValidator(_check_gc_age)]


class GcSettings(ConfigModel):
    """Garbage collection of what users deleted (`mlflow gc`): runs, experiments, logged models."""

    older_than: GcAge | None = None
    """remove what was deleted at least this long ago (`30d`, `12h`, `1d12h`, `0s`; MLflow's `--older-than`); unset: everything in the deleted stage"""


class DatabaseSettings(ConfigModel):
    name: SqlIdentifier = "mlflow"
    """database name: a letter, then letters, digits or `_`, at most 57"""
    username: OwnerRole = "mlflow"
    """schema owner role (superuser / RDS master; a letter, then letters, digits or `_`, at most 57): used for migrations only, the servers sign in as a limited role of their own"""
