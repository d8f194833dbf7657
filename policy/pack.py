"""The pack: the pure rules of rules/ wrapped as pulumi-policy policies.

Which stack is analysed decides the enforcement: the Pulumi CLI starts a policy pack with
PULUMI_STACK (and PULUMI_PROJECT, PULUMI_CONFIG) in its environment. On the `dev` stack the
rules marked dev=False (Multi-AZ, deletion protection) are DISABLED; on any other stack, or
when PULUMI_STACK is absent, every rule is MANDATORY: an unknown stack gets the strict set.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pulumi.runtime import rpc
from pulumi_policy import (
    EnforcementLevel,
    Policy,
    PolicyResource,
    ReportViolation,
    ResourceValidationArgs,
    ResourceValidationPolicy,
    Secret,
    StackValidationArgs,
    StackValidationPolicy,
)
from pulumi_policy.proxy import (
    UNKNOWN_ARCHIVE_VALUE,
    UNKNOWN_ARRAY_VALUE,
    UNKNOWN_ASSET_VALUE,
    UNKNOWN_BOOLEAN_VALUE,
    UNKNOWN_NUMBER_VALUE,
    UNKNOWN_OBJECT_VALUE,
    UNKNOWN_STRING_VALUE,
    UnknownValueError,
)
from rules import ALL_RULES, UNKNOWN, Res, Rule, Stack, UnknownValueUsed

PACK_NAME = "mlflow-platform-security"
DEV_STACKS = frozenset({"dev"})
_UNKNOWNS = frozenset(
    {
        UNKNOWN_BOOLEAN_VALUE,
        UNKNOWN_NUMBER_VALUE,
        UNKNOWN_STRING_VALUE,
        UNKNOWN_ARRAY_VALUE,
        UNKNOWN_ASSET_VALUE,
        UNKNOWN_ARCHIVE_VALUE,
        UNKNOWN_OBJECT_VALUE,
    }
)
# How the engine marks a secret in serialized properties (the mocks record inputs this way too):
# the SDK's own constants, so the pack and the tests cannot disagree with the engine.
_SIG_KEY = rpc._special_sig_key
_SECRET_SIG = rpc._special_secret_sig


def current_stack() -> str:
    return os.environ.get("PULUMI_STACK", "")


def enforcement(rule: Rule, stack: str) -> EnforcementLevel:
    if stack in DEV_STACKS and not rule.dev:
        return EnforcementLevel.DISABLED
    return EnforcementLevel.MANDATORY


def _raw(value: Any) -> Any:
    # pulumi-policy's proxies hand out their wrapped list/dict under this key.
    try:
        return value["__target"]
    except (KeyError, TypeError, IndexError):
        return value


def plain(value: Any) -> Any:
    """Proxies, secrets and unknown sentinels -> plain dicts/lists/scalars with UNKNOWN."""
    if isinstance(value, Secret):
        return plain(value.value)
    if isinstance(value, str):
        return UNKNOWN if value in _UNKNOWNS else value
    if isinstance(value, Mapping):
        raw = _raw(value)
        if raw.get(_SIG_KEY) == _SECRET_SIG:
            return plain(raw.get("value"))
        return {key: plain(item) for key, item in raw.items()}
    if isinstance(value, Sequence) and not isinstance(value, (bytes, bytearray)):
        return [plain(item) for item in _raw(value)]
    return value


def resource_from_policy(resource: PolicyResource) -> Res:
    return Res(
        type=resource.resource_type,
        name=resource.name,
        props=plain(resource.props),
        urn=resource.urn,
        dependencies=tuple(d.urn for d in resource.dependencies),
        property_dependencies={k: tuple(d.urn for d in v) for k, v in resource.property_dependencies.items()},
        parent=resource.parent.urn if resource.parent is not None else "",
    )


def _run(rule: Rule, subject: Any) -> list:
    try:
        return rule.check(subject)
    except UnknownValueUsed as exc:
        # Reported by pulumi-policy as "can't run policy ... during preview" (advisory); `pulumi up` runs it for real.
        raise UnknownValueError(UNKNOWN_STRING_VALUE, [rule.id]) from exc


def _resource_validation(rule: Rule) -> Callable[[ResourceValidationArgs, ReportViolation], None]:
    def validate(args: ResourceValidationArgs, report_violation: ReportViolation) -> None:
        if args.resource_type not in rule.types:
            return
        res = Res(
            type=args.resource_type,
            name=args.name,
            props=plain(args.props),
            urn=args.urn,
            parent=args.opts.parent or "",
        )
        for message in _run(rule, res):
            report_violation(message, None)

    return validate


def _stack_validation(rule: Rule) -> Callable[[StackValidationArgs, ReportViolation], None]:
    def validate(args: StackValidationArgs, report_violation: ReportViolation) -> None:
        stack = Stack(resource_from_policy(r) for r in args.resources)
        for urn, message in _run(rule, stack):
            report_violation(message, urn or None)

    return validate


def build_policies(stack: str) -> list[Policy]:
    """One pulumi-policy policy per rule, enforced for `stack`."""
    policies: list[Policy] = []
    for rule in ALL_RULES:
        if rule.kind == "resource":
            policies.append(
                ResourceValidationPolicy(
                    name=rule.id,
                    description=rule.description,
                    validate=_resource_validation(rule),
                    enforcement_level=enforcement(rule, stack),
                )
            )
        else:
            policies.append(
                StackValidationPolicy(
                    name=rule.id,
                    description=rule.description,
                    validate=_stack_validation(rule),
                    enforcement_level=enforcement(rule, stack),
                )
            )
    return policies
