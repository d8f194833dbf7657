"""Run the real `__main__.py` under Pulumi mocks and record every resource it registers.

No Pulumi CLI, no plugins, no Docker engine, no AWS account: the SDK's mock monitor
answers registrations, and this recorder keeps their inputs for assertions.
Secret inputs stay wrapped (`is_secret()` tells), so tests can prove a value is secret.
"""

from __future__ import annotations

import base64
import hashlib
import json
import runpy
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pulumi
import yaml
from pulumi.runtime import rpc
from pulumi.runtime.mocks import MockMonitor
from pulumi.runtime.stack import run_pulumi_func
from pulumi.runtime.sync_await import _sync_await

REPO_ROOT = Path(__file__).resolve().parent.parent
PROJECT = "mlflow-platform"
# The sentinel Pulumi uses to mark a secret value in serialized inputs (the SDK's own constants).
SECRET_SIG = rpc._special_secret_sig
SIG_KEY = rpc._special_sig_key


def is_secret(value: Any) -> bool:
    return isinstance(value, dict) and value.get(SIG_KEY) == SECRET_SIG


def reveal(value: Any) -> Any:
    """The plain value behind secret wrappers, recursively."""
    if is_secret(value):
        return reveal(value.get("value"))
    if isinstance(value, dict):
        return {k: reveal(v) for k, v in value.items()}
    if isinstance(value, list):
        return [reveal(v) for v in value]
    return value


def secret_paths(value: Any, path: str = "") -> list[str]:
    """Where in an input tree secrets sit."""
    if is_secret(value):
        return [path or "."]
    found: list[str] = []
    if isinstance(value, dict):
        for key, item in value.items():
            found += secret_paths(item, f"{path}.{key}" if path else key)
    elif isinstance(value, list):
        for index, item in enumerate(value):
            found += secret_paths(item, f"{path}[{index}]")
    return found


@dataclass
class Resource:
    typ: str
    name: str
    inputs: dict
    provider: str | None
    custom: bool
    urn: str = ""
    parent: str = ""
    # Resource options as the engine receives them.
    dependencies: list[str] = field(default_factory=list)
    retain_on_delete: bool = False
    protect: bool = False
    delete_before_replace: bool = False
    # URNs whose replacement replaces this resource too (ResourceOptions.replace_with).
    replace_with: list[str] = field(default_factory=list)
    # Input property -> URNs it came from (what the engine hands to stack policies).
    property_dependencies: dict[str, list[str]] = field(default_factory=dict)
    # ResourceOptions.custom_timeouts: {"create": "60m", ...}, only those set.
    custom_timeouts: dict[str, str] = field(default_factory=dict)
    # URNs this resource had before (ResourceOptions.aliases): the engine moves them, no replace.
    alias_urns: list[str] = field(default_factory=list)
    # The name its state was created under: an alias's other name, else its own (default_outputs draws on it).
    deployed_name: str = ""

    @property
    def plain(self) -> dict:
        return reveal(self.inputs)


class OptionRecordingMonitor(MockMonitor):
    """The SDK's mock monitor, also keeping the options mocks do not see (depends_on, retain...).

    Registrations run on several threads at once; each thread hands its own request
    to `new_resource` through a thread-local, so options land on the right record.
    """

    def __init__(self, mocks: RecordingMocks):
        super().__init__(mocks)
        mocks.monitor = self

    def RegisterResource(self, request):
        _CURRENT.request = request
        try:
            return super().RegisterResource(request)
        finally:
            _CURRENT.request = None


_CURRENT = threading.local()


def _alias_urn(monitor: MockMonitor, request, alias) -> str:
    """The URN an alias names: given whole, or as a spec (another name, type or parent)."""
    if alias.urn:
        return alias.urn
    spec = alias.spec
    parent = "" if spec.noParent else (spec.parentUrn or request.parent)
    return monitor.make_urn(parent, spec.type or request.type, spec.name or request.name)


@dataclass
class Call:
    token: str
    args: dict


def fake_secret_text(name: str, length: int) -> str:
    """A deterministic stand-in for a generated value (what the random provider would return)."""
    return (hashlib.sha256(name.encode()).hexdigest() * 4)[:length]


def generated_value(resource: Resource) -> str:
    """What the mocks' random provider generated for a RandomPassword (default_outputs)."""
    return fake_secret_text(resource.deployed_name, int(resource.inputs["length"]))


def default_outputs(typ: str, name: str, inputs: dict) -> dict:
    """Outputs the real providers compute and the program reads (the mock echoes inputs only)."""
    if typ in ("random:index/randomPassword:RandomPassword", "random:index/randomString:RandomString"):
        return {"result": fake_secret_text(name, int(inputs.get("length", 16)))}
    if typ == "random:index/randomBytes:RandomBytes":
        # Standard base64, as the provider gives it (the seed makes '+' and '/' likely).
        raw = (hashlib.sha256(name.encode()).digest() * 4)[: int(inputs["length"])]
        return {"base64": base64.b64encode(raw).decode(), "hex": raw.hex()}
    if typ == "docker:index/remoteImage:RemoteImage":
        return {"imageId": f"sha256:{hashlib.sha256(inputs['name'].encode()).hexdigest()}"}
    if typ == "tls:index/privateKey:PrivateKey":
        return {
            "privateKeyPem": f"-----BEGIN PRIVATE KEY-----\n{fake_secret_text(name, 64)}\n-----END PRIVATE KEY-----\n"
        }
    if typ == "tls:index/selfSignedCert:SelfSignedCert":
        return {"certPem": f"-----BEGIN CERTIFICATE-----\n{fake_secret_text(name, 64)}\n-----END CERTIFICATE-----\n"}
    return {}


class RecordingMocks(pulumi.runtime.Mocks):
    """Records registrations; answers the outputs and invokes the program reads."""

    def __init__(
        self, outputs: Callable[[str, str, dict], dict] | None = None, calls: Callable[[str, dict], dict] | None = None
    ):
        self.resources: list[Resource] = []
        self.calls: list[Call] = []
        self.monitor: MockMonitor | None = None
        self._lock = threading.Lock()
        self._outputs = outputs
        self._calls = calls

    def new_resource(self, args: pulumi.runtime.MockResourceArgs):
        resource = Resource(args.typ, args.name, dict(args.inputs), args.provider, bool(args.custom))
        resource.deployed_name = args.name
        request = getattr(_CURRENT, "request", None)
        if request is not None and self.monitor is not None:
            resource.urn = self.monitor.make_urn(request.parent, request.type, request.name)
            resource.parent = request.parent
            resource.dependencies = list(request.dependencies)
            resource.retain_on_delete = bool(request.retainOnDelete)
            resource.protect = bool(request.protect)
            resource.delete_before_replace = bool(request.deleteBeforeReplace)
            resource.replace_with = list(request.replace_with)
            resource.property_dependencies = {
                key: list(deps.urns) for key, deps in request.propertyDependencies.items()
            }
            resource.alias_urns = sorted({_alias_urn(self.monitor, request, alias) for alias in request.aliases})
            # The engine keeps an aliased resource's state (its outputs) from the URN it had: what
            # the provider generated stays what it generated for the name it was deployed under.
            old_names = [urn.rsplit("::", 1)[-1] for urn in resource.alias_urns]
            resource.deployed_name = next((name for name in old_names if name != args.name), args.name)
            timeouts = request.customTimeouts
            resource.custom_timeouts = {
                kind: getattr(timeouts, kind) for kind in ("create", "update", "delete") if getattr(timeouts, kind)
            }
        with self._lock:
            self.resources.append(resource)
        state = dict(args.inputs)
        state.update(default_outputs(args.typ, resource.deployed_name, dict(args.inputs)))
        if self._outputs:
            state.update(self._outputs(args.typ, args.name, dict(args.inputs)))
        return f"{args.name}-id", state

    def call(self, args: pulumi.runtime.MockCallArgs):
        self.calls.append(Call(args.token, dict(args.args)))
        if self._calls:
            return self._calls(args.token, dict(args.args))
        return {}


@dataclass
class ProgramRun:
    resources: list[Resource]
    outputs: dict[str, Any]
    calls: list[Call] = field(default_factory=list)
    # The exception the program raised, when run with raise_errors=False.
    error: BaseException | None = None

    # Finders, so assertions read as what they check.
    def of_type(self, typ: str) -> list[Resource]:
        return [r for r in self.resources if r.typ == typ]

    def one(self, typ: str, name_contains: str = "") -> Resource:
        matches = [r for r in self.of_type(typ) if name_contains in r.name]
        assert len(matches) == 1, f"expected one {typ} named *{name_contains}*, got {[r.name for r in matches]}"
        return matches[0]

    def exactly(self, typ: str, name: str) -> Resource:
        """The resource of type `typ` named exactly `name`."""
        matches = [r for r in self.of_type(typ) if r.name == name]
        assert len(matches) == 1, f"expected one {typ} named {name}, got {[r.name for r in self.of_type(typ)]}"
        return matches[0]

    def by_urn(self, urn: str) -> Resource:
        return next(r for r in self.resources if r.urn == urn)

    def depends_on(self, resource: Resource, other: Resource) -> bool:
        """Whether `resource` waits for `other`, directly or through a component it depends on."""
        return other.urn in resource.dependencies

    def named(self, name: str) -> Resource:
        matches = [r for r in self.resources if r.name == name]
        assert len(matches) == 1, f"expected one resource named {name}, got {len(matches)}"
        return matches[0]

    @property
    def custom(self) -> list[Resource]:
        return [r for r in self.resources if r.custom]


def stack_config(stack: str) -> dict[str, str]:
    """The committed Pulumi.<stack>.yaml as the flat key -> string map the engine passes."""
    data = yaml.safe_load((REPO_ROOT / f"Pulumi.{stack}.yaml").read_text()) or {}
    return {
        key: value if isinstance(value, str) else json.dumps(value) for key, value in data.get("config", {}).items()
    }


def run_program(
    config: dict[str, str],
    stack: str = "dev",
    outputs: Callable[[str, str, dict], dict] | None = None,
    calls: Callable[[str, dict], dict] | None = None,
    raise_errors: bool = True,
    secret_keys: list[str] | tuple[str, ...] = (),
) -> ProgramRun:
    """Run __main__.py once with `config`, from a clean runtime state, and return what it registered.

    `secret_keys`: config keys set with `pulumi config set --secret` (the engine passes their names).
    """
    mocks = RecordingMocks(outputs, calls)
    # A clean slate: no root resource, exports or config left over from an earlier run.
    pulumi.runtime.settings.ROOT.set(None)
    pulumi.runtime.set_all_config(config, list(secret_keys))
    pulumi.runtime.set_mocks(mocks, project=PROJECT, stack=stack, preview=False, monitor=OptionRecordingMonitor(mocks))

    exports: dict[str, Any] = {}
    original_export = pulumi.export

    def recording_export(name: str, value: Any) -> None:
        exports[name] = value
        original_export(name, value)

    pulumi.export = recording_export
    error = None
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=DeprecationWarning)
            # run_pulumi_func runs the program, then waits for every registration to finish.
            _sync_await(run_pulumi_func(lambda: runpy.run_path(str(REPO_ROOT / "__main__.py"), run_name="__main__")))
        resolved = {name: _sync_await(_settle(value)) for name, value in exports.items()}
    except Exception as exc:  # noqa: BLE001 (handed back to the test when asked)
        if raise_errors:
            raise
        error, resolved = exc, {}
    finally:
        pulumi.export = original_export
    return ProgramRun(mocks.resources, resolved, mocks.calls, error)


async def _settle(value: Any) -> tuple[Any, bool]:
    """An export as (value, is_secret)."""
    output = pulumi.Output.from_input(value)
    return await output.future(with_unknowns=True), await output.is_secret()
