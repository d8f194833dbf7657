"""The pack itself: what __main__.py serves, enforcement per stack, behaviour during a preview."""

from __future__ import annotations

import os
import runpy
from pathlib import Path

import pack
import pulumi_policy.policy as pulumi_policy_impl
import pytest
import yaml
from pulumi.runtime import proto
from pulumi_policy import EnforcementLevel, ResourceValidationPolicy, StackValidationPolicy
from pulumi_policy.proxy import UNKNOWN_STRING_VALUE, UnknownValueError
from rules import ALL_RULES, UNKNOWN, Res, Rule
from rules.aws_alb import ALLOWED_TLS_POLICIES

from components.specs.endpoints import JobQueueEndpoint
from tests.policy.fixtures import CASES, res
from tests.policy.harness import POLICY_DIR, REPO_ROOT, analyze, servicer
from tests.pulumi_mocks import SECRET_SIG, SIG_KEY

# The shared job queue every spec with tracking.jobExecution (the default) needs.
QUEUE = JobQueueEndpoint("redis", 6379)

DEV_EXEMPT = {"rds-deletion-protection", "rds-multi-az", "alb-deletion-protection"}


def test_the_pack_has_at_least_24_policies_with_unique_names():
    policies = pack.build_policies("prod")
    assert len(policies) == len(ALL_RULES) == len(CASES)
    assert len({p.name for p in policies}) == len(policies)
    kinds = {type(p) for p in policies}
    assert kinds == {ResourceValidationPolicy, StackValidationPolicy}


def test_prod_enforces_every_rule():
    assert {p.enforcement_level for p in pack.build_policies("prod")} == {EnforcementLevel.MANDATORY}


def test_dev_drops_only_what_makes_no_sense_on_a_laptop():
    levels = {p.name: p.enforcement_level for p in pack.build_policies("dev")}
    assert {n for n, level in levels.items() if level == EnforcementLevel.DISABLED} == DEV_EXEMPT
    assert {r.id for r in ALL_RULES if not r.dev} == DEV_EXEMPT
    assert all(level == EnforcementLevel.MANDATORY for n, level in levels.items() if n not in DEV_EXEMPT)


@pytest.mark.parametrize("stack,dev", [("dev", True), ("prod", False), ("staging", False), ("", False)])
def test_the_stack_comes_from_PULUMI_STACK_and_unknown_stacks_get_every_rule(monkeypatch, stack, dev):
    monkeypatch.setenv("PULUMI_STACK", stack)
    levels = {p.enforcement_level for p in pack.build_policies(pack.current_stack())}
    assert (EnforcementLevel.DISABLED in levels) is dev


@pytest.fixture
def served(monkeypatch, capsysbinary):
    """Run policy/__main__.py as `python policy/` does; stop its serve loop right away and keep the servicer."""
    made = []

    class Recording(pulumi_policy_impl._PolicyAnalyzerServicer):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            made.append(self)

    def stop(_seconds):
        raise KeyboardInterrupt  # PolicyPack catches it and stops its gRPC server

    monkeypatch.setattr(pulumi_policy_impl, "_PolicyAnalyzerServicer", Recording)
    monkeypatch.setattr(pulumi_policy_impl.time, "sleep", stop)

    def serve(stack: str):
        monkeypatch.setenv("PULUMI_STACK", stack)
        runpy.run_path(str(POLICY_DIR), run_name="__main__")
        port = capsysbinary.readouterr().out.decode().strip()
        assert port.isdigit(), "PolicyPack prints the port it listens on for the engine"
        return made[-1]

    return serve


def test_main_serves_a_valid_policy_pack(served):
    info = served("prod").GetAnalyzerInfo(None, None)
    assert info.name == pack.PACK_NAME
    assert len(info.policies) == len(ALL_RULES) == len(CASES)
    assert {p.enforcementLevel for p in info.policies} == {proto.MANDATORY}
    assert {p.policy_type for p in info.policies} == {
        proto.PolicyType.POLICY_TYPE_RESOURCE,
        proto.PolicyType.POLICY_TYPE_STACK,
    }
    for policy in info.policies:
        assert "[" in policy.description, f"{policy.name} cites no control"


def test_main_on_the_dev_stack_disables_the_laptop_exemptions(served):
    info = served("dev").GetAnalyzerInfo(None, None)
    assert {p.name for p in info.policies if p.enforcementLevel == proto.DISABLED} == DEV_EXEMPT


def test_a_rule_tripping_over_an_unknown_becomes_a_preview_advisory():
    def careless(r: Res) -> list[str]:
        return ["violation"] if r.get("storageEncrypted") else []  # truth test on a maybe-unknown value

    rule = Rule("careless", ("TEST",), "careless test rule", ("aws:rds/instance:Instance",), "resource", True, careless)
    with pytest.raises(UnknownValueError):
        pack._run(rule, Res("aws:rds/instance:Instance", "db", {"storageEncrypted": UNKNOWN}))
    policy = ResourceValidationPolicy(
        name="careless", description="careless test rule", validate=pack._resource_validation(rule)
    )
    analyzer = pulumi_policy_impl._PolicyAnalyzerServicer("t", "1.0.0", [policy], EnforcementLevel.MANDATORY)
    from google.protobuf import struct_pb2

    props = struct_pb2.Struct()
    props.update({"storageEncrypted": UNKNOWN_STRING_VALUE})
    response = analyzer.Analyze(
        proto.AnalyzeRequest(type="aws:rds/instance:Instance", properties=props, urn="u", name="db"), None
    )
    (diagnostic,) = response.diagnostics
    assert diagnostic.enforcementLevel == proto.ADVISORY and "during preview" in diagnostic.message


def test_secrets_reach_the_rules_as_plain_values():
    secret = {SIG_KEY: SECRET_SIG, "value": "POSTGRES_PASSWORD=x"}
    container = res(
        "docker:index/container:Container",
        "db",
        {"envs": [secret], "securityOpts": ["no-new-privileges:true"], "healthcheck": {"tests": ["CMD", "true"]}},
    )
    [finding] = analyze([container], "dev")
    assert finding.policy == "docker-no-secret-in-env"


def test_the_tls_allow_list_is_what_the_config_accepts():
    from components.config.aws import MODERN_TLS_POLICIES

    assert ALLOWED_TLS_POLICIES == MODERN_TLS_POLICIES


def test_the_object_store_rule_names_what_the_program_sets():
    """The pack imports nothing of the program: its copies of the names must not drift."""
    from rules import docker_stack

    from components.config import parse_settings
    from components.specs import seaweedfs
    from components.specs.endpoints import DatabaseEndpoint, private_s3_endpoint
    from components.specs.minio import KMS_SECRET_KEY_FILE, minio_spec
    from components.specs.mlflow_server import mlflow_server_spec
    from images.mlflow import server_contract as contract

    settings = parse_settings({"target": "docker"})
    minio_env = minio_spec(settings.artifact_store).env
    assert minio_env[docker_stack.MINIO_KMS_KEY_FILE_ENV] == KMS_SECRET_KEY_FILE
    database = DatabaseEndpoint(host="postgres", port=5432, name="mlflow", user="mlflow")
    server_env = mlflow_server_spec(
        settings.tracking, database, private_s3_endpoint("mlflow", "us-east-1", "m", 1), job_queue=QUEUE
    ).env
    assert server_env[docker_stack.CREATE_BUCKET_ENV] == "mlflow"
    assert server_env[docker_stack.BUCKET_ENCRYPTION_ENV] == contract.SSE_S3 in docker_stack.BUCKET_ENCRYPTIONS
    assert docker_stack.SEAWEEDFS_SECURITY_FILE == seaweedfs.SECURITY_FILE


def test_the_pack_installs_the_sdk_versions_the_program_uses():
    def pins(path: Path) -> dict[str, str]:
        lines = [line.split("#")[0].strip() for line in path.read_text().splitlines()]
        return dict(line.split("==") for line in lines if "==" in line)

    pack_pins = pins(POLICY_DIR / "requirements.txt")
    assert pack_pins["pulumi-policy"] == pins(REPO_ROOT / "requirements-dev.txt")["pulumi-policy"]
    assert pack_pins["pulumi"] == pins(REPO_ROOT / "requirements.txt")["pulumi"]
    import pulumi_policy.version

    assert pack_pins["pulumi-policy"] == pulumi_policy.version.VERSION


def test_pulumi_policy_yaml_names_a_python_pack():
    spec = yaml.safe_load((POLICY_DIR / "PulumiPolicy.yaml").read_text())
    assert spec["runtime"]["name"] == "python"
    assert spec["runtime"]["options"]["virtualenv"] == ".venv"  # ignored by git (.venv/)
    assert os.path.exists(POLICY_DIR / "__main__.py")
    assert servicer("prod").GetAnalyzerInfo(None, None).name == pack.PACK_NAME


def test_docs_list_every_rule_with_its_controls_and_dev_flag():
    from tools import policy_reference

    assert policy_reference.main(["--check"]) == 0, "run: python -m tools.policy_reference"
    table = policy_reference.DOC.read_text()
    for rule in ALL_RULES:
        dev = "yes" if rule.dev else "**no**"
        assert f"| `{rule.id}` | {rule.kind} | {', '.join(rule.controls)} | {dev} | {rule.summary} |" in table


def test_a_new_rule_makes_the_docs_stale(monkeypatch):
    from tools import policy_reference

    extra = Rule("made-up", ("X",), "A rule nobody documented", ("t",), "resource", True, lambda *_: None)
    monkeypatch.setattr(policy_reference, "ALL_RULES", (*ALL_RULES, extra))
    assert policy_reference.main(["--check"]) == 1


def test_the_pack_answers_the_engine_over_grpc():
    """`python policy/` as the CLI starts it: it prints its port, then answers the Analyzer gRPC service."""
    import subprocess
    import sys

    import grpc
    from google.protobuf import empty_pb2, struct_pb2
    from pulumi.runtime.proto import analyzer_pb2_grpc

    env = {**os.environ, "PULUMI_STACK": "prod"}
    server = subprocess.Popen([sys.executable, str(POLICY_DIR)], stdout=subprocess.PIPE, env=env, cwd=REPO_ROOT)
    try:
        port = server.stdout.readline().decode().strip()
        assert port.isdigit(), port
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            stub = analyzer_pb2_grpc.AnalyzerStub(channel)
            info = stub.GetAnalyzerInfo(empty_pb2.Empty(), timeout=20)
            assert info.name == pack.PACK_NAME and len(info.policies) == len(ALL_RULES)
            props = struct_pb2.Struct()
            props.update({"engine": "postgres", "publiclyAccessible": True})
            response = stub.Analyze(
                proto.AnalyzeRequest(
                    type="aws:rds/instance:Instance",
                    properties=props,
                    urn="urn:pulumi:prod::p::aws:rds/instance:Instance::db",
                    name="db",
                ),
                timeout=20,
            )
            found = {(d.policyName, d.message.split("\n")[1]) for d in response.diagnostics}
            assert ("rds-not-public", "publiclyAccessible must be false") in found
            assert ("rds-multi-az", "multiAz must be true") in found
    finally:
        server.terminate()
        server.wait(timeout=10)
