"""The config reference tables of README.md and docs/aws.md, generated from the config models.

Each key's default comes from the model, its meaning from the field's docstring (pydantic's
`use_attribute_docstrings`), so the docs cannot drift from the code:

    python -m tools.config_reference           # rewrite the tables in place
    python -m tools.config_reference --check   # exit 1 when a table is out of date
"""

from __future__ import annotations

import argparse
import ipaddress
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel, BeforeValidator
from pydantic.fields import FieldInfo
from pydantic_core import PydanticUndefined

from components.config.access import AccessSettings, Grants, RoleSettings, UserSettings
from components.config.aws import AwsSettings
from components.config.base import DatabaseSettings, GcSettings, TrackingSettings
from components.config.docker import DockerSettings
from components.sizes import nginx_size, parse_size
from tools.generated_blocks import replace_block, write_or_check

REPO_ROOT = Path(__file__).resolve().parent.parent
COMMON_MODELS = (TrackingSettings, DatabaseSettings, GcSettings, AccessSettings, Grants, RoleSettings, UserSettings)
# Where each table lives: (file, table name).
TABLES = {"common": "README.md", "docker": "README.md", "aws": "docs/aws.md"}
TOOL = "python -m tools.config_reference"


def leaf_fields(model: type[BaseModel], prefix: str = "") -> Iterator[tuple[str, type[BaseModel], str, FieldInfo]]:
    """(key path, owning model, attribute name, field) for every key a stack file can set."""
    for name, info in model.model_fields.items():
        key = prefix + (info.alias or name)
        annotation = info.annotation
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            yield from leaf_fields(annotation, f"{key}.")
        else:
            yield key, model, name, info


def owner(model: type[BaseModel], name: str) -> type:
    return next(cls for cls in model.__mro__ if name in cls.__dict__.get("__annotations__", {}))


def is_size(info: FieldInfo) -> bool:
    return any(isinstance(item, BeforeValidator) and item.func is parse_size for item in info.metadata)


def shown(value: Any, info: FieldInfo) -> str:
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    if isinstance(value, int) and is_size(info):
        return f"`{nginx_size(value)}`"
    if isinstance(value, dict):
        return f"`{{{', '.join(str(key) for key in value)}}}`" if value else "`{}`"
    if isinstance(value, (list, tuple)):
        return f"`[{', '.join(str(item) for item in value)}]`"
    if isinstance(value, (ipaddress.IPv4Address, ipaddress.IPv4Network, int, str)):
        return f"`{value}`"
    return f"`{value!r}`"


def default_of(info: FieldInfo) -> str:
    if info.default_factory is not None:
        return shown(info.default_factory(), info)  # type: ignore[call-arg]
    if info.default is PydanticUndefined:
        return "(required)"
    if info.default is None:
        return "unset"
    return shown(info.default, info)


def rows(table: str) -> list[str]:
    models: dict[str, type[BaseModel]] = {"common": DockerSettings, "docker": DockerSettings, "aws": AwsSettings}
    lines = ["| key | default | meaning |", "|---|---|---|"]
    for key, model, name, info in leaf_fields(models[table]):
        common = key == "target" or owner(model, name) in COMMON_MODELS
        if common != (table == "common"):
            continue
        meaning = " ".join((info.description or "").split()).replace("|", "\\|")
        lines.append(f"| `{key}` | {default_of(info)} | {meaning} |")
    return lines


def generated() -> dict[Path, str]:
    files: dict[Path, str] = {}
    for table, name in TABLES.items():
        path = REPO_ROOT / name
        files[path] = replace_block(
            files.get(path, path.read_text()), f"config reference: {table}", TOOL, rows(table), name
        )
    return files


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="fail when a table differs from the models")
    args = parser.parse_args(argv)
    return write_or_check(generated(), check=args.check, tool="tools.config_reference", root=REPO_ROOT)


if __name__ == "__main__":
    sys.exit(main())
