"""Run the policy pack the way the Pulumi CLI would, without the CLI.

`record()` runs the real program under the mocks (tests/pulumi_mocks.py) and also keeps
each registration's property dependencies, which the engine hands to stack policies.
`analyze()` feeds those resources to pulumi-policy's own analyzer servicer (the object
`pulumi preview --policy-pack` talks to over gRPC) as AnalyzeRequest/AnalyzeStackRequest
protos, so the pack's wrappers, pulumi-policy's deserialization and its unknown-value
proxies all run as in a preview.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from google.protobuf import json_format, struct_pb2

REPO_ROOT = Path(__file__).resolve().parents[2]
POLICY_DIR = REPO_ROOT / "policy"
if str(POLICY_DIR) not in sys.path:
    sys.path.insert(0, str(POLICY_DIR))

import pack  # noqa: E402
import pulumi_policy.policy as pulumi_policy_impl  # noqa: E402
from pulumi.runtime import proto  # noqa: E402
from pulumi_policy import EnforcementLevel  # noqa: E402
from rules import ALL_RULES, Res, Rule, Stack  # noqa: E402

import tests.pulumi_mocks as pulumi_mocks  # noqa: E402


@dataclass
class Recorded:
    run: pulumi_mocks.ProgramRun

    def resources(self, raw: bool = False) -> list[Res]:
        """The custom resources (providers and components are not analysed), as the rules see them,
        or with `raw` their inputs as recorded (secrets still wrapped), as the engine would send them."""
        return [
            to_res(r, r.property_dependencies, raw)
            for r in self.run.resources
            if r.custom and not r.typ.startswith("pulumi:providers:")
        ]


def record(config: dict[str, str], stack: str, outputs=None, calls=None, secret_keys=()) -> Recorded:
    return Recorded(
        pulumi_mocks.run_program(config, stack=stack, outputs=outputs, calls=calls, secret_keys=secret_keys)
    )


def to_res(
    resource: pulumi_mocks.Resource, property_dependencies: dict[str, list[str]] | None = None, raw: bool = False
) -> Res:
    props = dict(resource.inputs) if raw else pack.plain(resource.inputs)
    return Res(
        type=resource.typ,
        name=resource.name,
        props=props,
        urn=resource.urn,
        dependencies=tuple(resource.dependencies),
        property_dependencies={k: tuple(v) for k, v in (property_dependencies or {}).items()},
        parent=resource.parent,
    )


# ---- the pure engine: rule functions over Res (per-rule fixtures) ---------------------------------


def evaluate(rule: Rule, resources: list[Res]) -> list[tuple[str, str]]:
    """(resource name, message) for every violation of `rule`."""
    if rule.kind == "resource":
        return [(r.name, message) for r in resources if r.type in rule.types for message in rule.check(r)]
    names = {r.urn: r.name for r in resources}
    return [(names.get(urn, urn), message) for urn, message in rule.check(Stack(resources))]


# ---- through pulumi-policy's analyzer servicer ---------------------------------------------------


@dataclass(frozen=True)
class Diagnostic:
    policy: str
    urn: str
    message: str
    level: str


def servicer(stack: str) -> Any:
    """pulumi-policy's analyzer (what the CLI calls over gRPC) serving this pack for `stack`."""
    return pulumi_policy_impl._PolicyAnalyzerServicer(  # the class PolicyPack() serves; 1.21.0 is pinned
        pack.PACK_NAME, "1.0.0", pack.build_policies(stack), EnforcementLevel.MANDATORY
    )


def _struct(props: dict) -> struct_pb2.Struct:
    message = struct_pb2.Struct()
    json_format.ParseDict(props, message)
    return message


def _level(value: int) -> str:
    return proto.EnforcementLevel.Name(value).lower()


def analyze(resources: list[Res], stack: str) -> list[Diagnostic]:
    """Every diagnostic the pack reports: each resource alone (Analyze), then the whole stack (AnalyzeStack).

    `props` go over the wire as the engine sends them: secrets wrapped, unknowns as pulumi's sentinels.
    """
    analyzer = servicer(stack)
    diagnostics: list[Diagnostic] = []
    for r in resources:
        request = proto.AnalyzeRequest(
            type=r.type,
            properties=_struct(dict(r.props)),
            urn=r.urn,
            name=r.name,
            options=proto.AnalyzerResourceOptions(parent=r.parent),
        )
        diagnostics += _collect(analyzer.Analyze(request, None), r.urn)
    stack_request = proto.AnalyzeStackRequest(
        resources=[
            proto.AnalyzerResource(
                type=r.type,
                properties=_struct(dict(r.props)),
                urn=r.urn,
                name=r.name,
                parent=r.parent,
                dependencies=list(r.dependencies),
                propertyDependencies={
                    k: proto.AnalyzerPropertyDependencies(urns=list(v)) for k, v in r.property_dependencies.items()
                },
            )
            for r in resources
        ]
    )
    diagnostics += _collect(analyzer.AnalyzeStack(stack_request, None), "")
    return diagnostics


def _collect(response: Any, default_urn: str) -> list[Diagnostic]:
    return [
        Diagnostic(d.policyName, d.urn or default_urn, d.message, _level(d.enforcementLevel))
        for d in response.diagnostics
    ]


def rules_by_id() -> dict[str, Rule]:
    return {rule.id: rule for rule in ALL_RULES}
