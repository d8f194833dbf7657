"""The stack's config, read from the Pulumi runtime and validated: the program's one entry to it.

Every config problem is found here, before any resource is registered: the models' own rules
(`parse_settings`) and what only the runtime knows, such as a value that must be a Pulumi secret
but sits in the stack file in plain text. Config is read only inside `load_settings()`, never at
import time, so tests can swap it between runs of the program.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pulumi
from pulumi.runtime import config as runtime_config

from components.config import NAMESPACE, AwsSettings, ConfigError, DockerSettings, parse_settings
from components.config.aws import AuthSettings

__all__ = ["StackConfigError", "load_settings", "plaintext_secret_problems", "read_raw_config"]


class StackConfigError(ConfigError, pulumi.RunError):
    """A ConfigError raised by the program: a RunError, so Pulumi prints it without a traceback."""


def read_raw_config(namespace: str = NAMESPACE) -> dict[str, Any]:
    """Every key of our namespace, object values decoded from the JSON Pulumi passes them as."""
    keys = set(runtime_config.CONFIG.get()) | set(runtime_config.get_config_env())
    raw: dict[str, Any] = {}
    for full_key in sorted(keys):
        prefix, _, key = full_key.partition(":")
        if prefix != namespace or not key:
            continue
        raw[key] = _decode(runtime_config.get_config(full_key))
    return raw


def _decode(value: Any) -> Any:
    if not isinstance(value, str):
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value  # a plain string such as `docker`


def plaintext_secret_problems(
    settings: AuthSettings, is_secret: Callable[[str], bool] = runtime_config.is_config_secret
) -> list[tuple[str, str]]:
    """Config problems of secrets given in plain text: the OIDC client secret must be a Pulumi secret.

    Pulumi tells the program which top-level keys hold a secret (PULUMI_CONFIG_SECRET_KEYS, read into
    `is_config_secret` before the program starts); `--path auth.oidc.clientSecret` marks `auth`. The
    value itself is never part of the message.
    """
    if settings.oidc is None or is_secret(f"{NAMESPACE}:auth"):
        return []
    return [
        (
            "auth.oidc.clientSecret",
            "is stored in plain text in the stack config (anyone who reads Pulumi.<stack>.yaml has it); "
            f"set it as a secret: pulumi config set --secret --path {NAMESPACE}:auth.oidc.clientSecret <value>",
        )
    ]


def load_settings() -> DockerSettings | AwsSettings:
    """Read and validate this stack's config; raise StackConfigError before anything is registered."""
    try:
        settings = parse_settings(read_raw_config())
    except ConfigError as error:
        raise StackConfigError(error.problems) from None
    problems = plaintext_secret_problems(settings.auth) if isinstance(settings, AwsSettings) else []
    if problems:
        raise StackConfigError(problems)
    return settings
