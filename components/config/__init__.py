"""Stack config -> one validated Settings object, or one clear error naming every wrong key.

Pure (pydantic only, no Pulumi): the specs and the end-to-end kit import these models without
the Pulumi SDK. Reading the stack's config is `components.config.loader`'s job.
"""

from __future__ import annotations

import difflib
from typing import Annotated, Any

from pydantic import Field, TypeAdapter, ValidationError
from pydantic_core import ErrorDetails

from components.config.aws import AwsSettings
from components.config.docker import DockerSettings

NAMESPACE = "mlflow-platform"

Settings = Annotated[DockerSettings | AwsSettings, Field(discriminator="target")]
_SETTINGS: TypeAdapter[DockerSettings | AwsSettings] = TypeAdapter(Settings)
_MODELS = {"docker": DockerSettings, "aws": AwsSettings}

__all__ = ["NAMESPACE", "AwsSettings", "ConfigError", "DockerSettings", "Settings", "parse_settings"]


class ConfigError(ValueError):
    """Invalid stack config: every problem, as (key path, reason), in one message."""

    def __init__(self, problems: list[tuple[str, str]]):
        self.problems = sorted(problems)
        lines = [f"  - {NAMESPACE}:{path}: {reason}" for path, reason in self.problems]
        count = len(self.problems)
        super().__init__(
            f"invalid stack configuration ({count} problem{'s' if count != 1 else ''}):\n"
            + "\n".join(lines)
            + "\nFix these in Pulumi.<stack>.yaml (see the config reference in README.md)."
        )


def parse_settings(raw: dict[str, Any]) -> DockerSettings | AwsSettings:
    try:
        settings = _SETTINGS.validate_python(raw)
    except ValidationError as error:
        raise ConfigError(_describe(error, raw)) from None
    problems = settings.semantic_problems()
    if problems:
        raise ConfigError(problems)
    return settings


def _describe(error: ValidationError, raw: dict[str, Any]) -> list[tuple[str, str]]:
    target = raw.get("target")
    problems = []
    for item in error.errors(include_url=False):
        loc = list(item["loc"])
        # A discriminated union puts the chosen tag first; it is not a config key.
        if loc and target in _MODELS and loc[0] == target and item["type"] not in ("union_tag_invalid",):
            loc = loc[1:]
        if item["type"] in ("union_tag_not_found", "union_tag_invalid"):
            problems.append(("target", _target_reason(target)))
            continue
        path = ".".join(str(part) for part in loc) or "(root)"
        problems.append((path, _reason(item, loc, target)))
    return problems


def _target_reason(target: Any) -> str:
    if target is None:
        return "required: set it to 'docker' (laptop) or 'aws' (production)"
    return f"must be 'docker' or 'aws' (got {target!r})"


def _reason(item: ErrorDetails, loc: list[Any], target: Any) -> str:
    kind = item["type"]
    if kind == "missing":
        return "required key is missing"
    if kind == "extra_forbidden":
        return _unknown_key_reason(loc, target)
    message = item["msg"]
    if message.startswith("Value error, "):
        message = message[len("Value error, ") :]
    value = item.get("input")
    if kind == "string_pattern_mismatch":
        return f"{value!r} does not match the expected format {item['ctx']['pattern']}"
    # Our own validators already quote the value; pydantic's built-in messages do not.
    if isinstance(value, (str, int, float, bool)) and kind != "value_error":
        return f"{message} (got {value!r})"
    return message


def _unknown_key_reason(loc: list[Any], target: Any) -> str:
    key = str(loc[-1])
    # A key that belongs to the other target: say so rather than just "unknown".
    for other, model in _MODELS.items():
        if other != target and _accepts(model, loc):
            return f"unknown key for target {target!r}: it is only valid when target is {other!r}"
    siblings = _known_keys(_MODELS.get(target), loc[:-1])
    close = difflib.get_close_matches(key, siblings, n=1)
    hint = f"; did you mean '{close[0]}'?" if close else (f"; known keys: {', '.join(siblings)}" if siblings else "")
    return f"unknown key{hint}"


def _model_at(model: Any, path: list[Any]) -> Any:
    for part in path:
        fields = {f.alias or name: f for name, f in getattr(model, "model_fields", {}).items()}
        if part not in fields:
            return None
        model = fields[part].annotation
    return model


def _accepts(model: Any, loc: list[Any]) -> bool:
    parent = _model_at(model, loc[:-1])
    return loc[-1] in _known_keys(parent, []) if parent is not None else False


def _known_keys(model: Any, path: list[Any]) -> list[str]:
    model = _model_at(model, path) if model is not None else None
    if model is None or not hasattr(model, "model_fields"):
        return []
    return sorted(f.alias or name for name, f in model.model_fields.items())
