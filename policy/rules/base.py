"""The rule model and the helpers every rule module shares.

A rule is a pure function over plain data (what `pulumi preview --policy-pack` hands the
pack, after `pack.py` unwraps pulumi-policy's proxies): a resource rule sees one resource,
a stack rule sees all of them and joins the pieces pulumi-aws v7 keeps apart (a bucket and
its public-access block, a security group and its rule resources).

Values `pulumi preview` cannot know yet arrive as UNKNOWN. A rule never reports a
violation for a value it cannot see: the same rule runs again at `pulumi up`, where every
input is known before the resource is created.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

# pulumi-aws v7 registers ALB resources under both modules (aws.lb and its alias aws.alb).
LOAD_BALANCERS = ("aws:lb/loadBalancer:LoadBalancer", "aws:alb/loadBalancer:LoadBalancer")
LISTENERS = ("aws:lb/listener:Listener", "aws:alb/listener:Listener")


class UnknownValueUsed(TypeError):
    """A rule tested an unknown value for truth: the pack reports "can't run during preview"."""


class _Unknown:
    _instance: _Unknown | None = None

    def __new__(cls) -> _Unknown:
        if cls._instance is None:
            cls._instance = super().__new__(cls)
        return cls._instance

    def __repr__(self) -> str:
        return "<unknown during preview>"

    def __bool__(self) -> bool:
        raise UnknownValueUsed("a value unknown during preview was tested for truth")


UNKNOWN = _Unknown()


@dataclass(frozen=True)
class Res:
    """One resource as the pack sees it: camelCase input properties, plain values."""

    type: str
    name: str
    props: Mapping[str, Any]
    urn: str = ""
    dependencies: tuple[str, ...] = ()
    # Input property -> URNs of the resources its value came from.
    property_dependencies: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    parent: str = ""

    def get(self, path: str, default: Any = None) -> Any:
        return get(self.props, path, default)


@dataclass(frozen=True)
class Rule:
    id: str
    controls: tuple[str, ...]
    summary: str
    # Resource rules: the types checked. Stack rules: the types read.
    types: tuple[str, ...]
    kind: str  # "resource" | "stack"
    # False: does not apply to the dev stack (a laptop has no Multi-AZ or deletion protection).
    dev: bool
    check: Callable[..., list]

    @property
    def description(self) -> str:
        return f"{self.summary} [{', '.join(self.controls)}]"


RULES: list[Rule] = []


def resource_rule(id: str, controls: Iterable[str], summary: str, types: Iterable[str], dev: bool = True):
    """Register `check(res) -> [message]` for each resource of `types`."""

    def register(check: Callable[[Res], list[str]]):
        RULES.append(Rule(id, tuple(controls), summary, tuple(types), "resource", dev, check))
        return check

    return register


def stack_rule(id: str, controls: Iterable[str], summary: str, types: Iterable[str], dev: bool = True):
    """Register `check(stack) -> [(urn, message)]` over every resource of the stack."""

    def register(check: Callable[[Stack], list[tuple[str, str]]]):
        RULES.append(Rule(id, tuple(controls), summary, tuple(types), "stack", dev, check))
        return check

    return register


# ---- reading values ---------------------------------------------------------------------------


def get(props: Any, path: str, default: Any = None) -> Any:
    """props["a"]["b"] for "a.b"; UNKNOWN if any step is unknown; `default` if absent."""
    value = props
    for key in path.split("."):
        if value is UNKNOWN:
            return UNKNOWN
        if isinstance(value, Mapping):
            if key not in value or value[key] is None:
                return default
            value = value[key]
        elif isinstance(value, list) and key.isdigit() and int(key) < len(value):
            value = value[int(key)]
        else:
            return default
    return value


def known(*values: Any) -> bool:
    return all(v is not UNKNOWN for v in values)


def is_true(value: Any) -> bool | None:
    """True/False for a boolean input; None when unknown. "true" strings count (JSON options)."""
    if value is UNKNOWN:
        return None
    if isinstance(value, str):
        return value.strip().lower() == "true"
    return value is True


def items(value: Any) -> list:
    """A list input as a list; [] when absent, unknown or not a list (nothing to check yet)."""
    return list(value) if isinstance(value, (list, tuple)) else []


def as_list(value: Any) -> list:
    if value is None:
        return []
    if value is UNKNOWN:
        return [UNKNOWN]
    return list(value) if isinstance(value, (list, tuple)) else [value]


def parse_json(value: Any) -> Any:
    """A JSON document input (policies, container definitions): parsed, UNKNOWN, or None."""
    if value is None or value is UNKNOWN:
        return value
    if isinstance(value, (dict, list)):
        return value
    try:
        return json.loads(value)
    except (TypeError, ValueError):
        return None


def number(value: Any) -> float | None:
    if value is None or value is UNKNOWN or isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def policy_statements(document: Any) -> list[Mapping[str, Any]]:
    """Statements of an IAM/resource policy document, always as a list of mappings."""
    doc = parse_json(document)
    if not isinstance(doc, Mapping):
        return []
    statements = doc.get("Statement", [])
    if isinstance(statements, Mapping):
        statements = [statements]
    return [s for s in statements if isinstance(s, Mapping)]


def port_range(props: Mapping, from_key: str = "fromPort", to_key: str = "toPort") -> tuple[int, int] | None:
    low, high = number(get(props, from_key)), number(get(props, to_key))
    if low is None or high is None:
        return None
    return int(low), int(high)


# ---- joining resources (stack rules) ----------------------------------------------------------


class Stack:
    """All resources of a stack, with the joins pulumi-aws v7 needs (child -> parent resource)."""

    def __init__(self, resources: Iterable[Res]):
        self.resources = list(resources)
        self.by_urn = {r.urn: r for r in self.resources if r.urn}

    def of(self, *types: str) -> list[Res]:
        return [r for r in self.resources if r.type in types]

    def joined(self, child: Res, key: str, *types: str, value: Any = None) -> list[Res]:
        """The resources of `types` that `child.props[key]` points at.

        In order: the engine's property dependencies for `key` (exact, and known during a
        preview where IDs are not); a match of the value against the targets' id/arn/name/
        bucket outputs (stacks analysed from state); the resource's other dependencies of
        that type when there is exactly one. `value` replaces props[key] for the match
        (e.g. accessLogs.bucket inside accessLogs).
        """
        by_property = [self.by_urn[u] for u in child.property_dependencies.get(key, ()) if u in self.by_urn]
        found = [r for r in by_property if r.type in types]
        if found:
            return found
        raw = get(child.props, key) if value is None else value
        values = {v for v in as_list(raw) if isinstance(v, str) and v}
        if values:
            found = [
                r
                for r in self.of(*types)
                if values & {r.props.get(k) for k in ("id", "arn", "name", "bucket") if isinstance(r.props.get(k), str)}
            ]
            if found:
                return found
        if key in child.property_dependencies:
            # The engine said where the value came from, and it is none of `types`.
            return []
        candidates = list(dict.fromkeys(u for u in child.dependencies if u in self.by_urn))
        typed = [self.by_urn[u] for u in candidates if self.by_urn[u].type in types]
        if len(typed) > 1 and child.parent:
            # Several (a log bucket's policy names the buckets it takes logs from): the one of the
            # same component, when only one is.
            typed = [r for r in typed if r.parent == child.parent]
        return typed if len(typed) == 1 else []

    def joined_to(self, target: Res, key: str, *child_types: str) -> list[Res]:
        """The resources of `child_types` whose `key` points at `target`."""
        return [c for c in self.of(*child_types) if any(j.urn == target.urn for j in self.joined(c, key, target.type))]


def label(res: Res) -> str:
    return f"{res.type.rsplit(':', 1)[-1]} '{res.name}'"


# ---- secrets in plain environment variables ---------------------------------------------------

_SECRET_WORDS = (
    "PASSWORD",
    "PASSWD",
    "PASSPHRASE",
    "SECRET",
    "TOKEN",
    "PRIVATE_KEY",
    "ACCESS_KEY",
    "API_KEY",
    "CREDENTIAL",
)
# Variables that *point at* a secret (a file, a path, an ARN) are how secrets should travel.
_POINTER_SUFFIXES = ("_FILE", "_PATH", "_DIR", "_ARN")


def secret_env_problem(name: str, value: Any) -> str | None:
    """Why `name=value` in a plain environment leaks a secret, or None."""
    upper = name.upper()
    if any(word in upper for word in _SECRET_WORDS) and not upper.endswith(_POINTER_SUFFIXES):
        return f"{name} looks like a secret"
    if isinstance(value, str):
        if re.search(r"://[^/\s:@]+:[^/\s@]+@", value):
            return f"{name} has credentials in a URL"
        if re.search(r"\b(AKIA|ASIA)[0-9A-Z]{16}\b", value):
            return f"{name} holds an AWS access key id"
    return None
