"""What the program asks the engine for, per stack, as comparable data: a resource's URN, inputs
and options. `python -m tests.mocks.snapshot` rewrites tests/mocks/baseline/*.json after an
intended change; test_no_replacement.py compares the program against them.

The Docker engine is a fake one (an endpoint and an amd64 engine), so the snapshot is the same on
every machine; the AWS answers are tests/mocks/aws_fixtures.py's.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from tests.fake_docker import fake_docker
from tests.pulumi_mocks import REPO_ROOT, ProgramRun, reveal, run_program, secret_paths, stack_config

BASELINE_DIR = Path(__file__).resolve().parent / "baseline"
STACKS = ("dev", "prod")


def run_stack(stack: str) -> ProgramRun:
    from tests.mocks.aws_fixtures import aws_calls, aws_outputs

    kwargs = {"outputs": aws_outputs, "calls": aws_calls} if stack == "prod" else {}
    with tempfile.TemporaryDirectory() as bin_dir:
        fake_docker(Path(bin_dir), context="unix:///var/run/docker.sock", engine_platform="linux/amd64",
                    engine_version="27.0.0")  # fmt: skip
        saved = os.environ.get("PATH", "")
        os.environ["PATH"] = f"{bin_dir}{os.pathsep}{saved}"
        try:
            return run_program(stack_config(stack), stack=stack, **kwargs)
        finally:
            os.environ["PATH"] = saved


def snapshot(run: ProgramRun) -> dict[str, dict]:
    """URN -> what the engine is asked for (inputs with secrets marked, options)."""
    taken = {}
    for resource in run.resources:
        taken[resource.urn] = {
            "custom": resource.custom,
            "inputs": reveal(resource.inputs),
            "secret_inputs": sorted(secret_paths(resource.inputs)),
            # The provider's URN (its reference is "<urn>::<id>").
            "provider": resource.provider.rsplit("::", 1)[0] if resource.provider else None,
            "dependencies": sorted(resource.dependencies),
            "delete_before_replace": resource.delete_before_replace,
            "retain_on_delete": resource.retain_on_delete,
            "replace_with": sorted(resource.replace_with),
            "custom_timeouts": resource.custom_timeouts,
            "aliases": sorted(resource.alias_urns),
        }
    return taken


def baseline_path(stack: str) -> Path:
    return BASELINE_DIR / f"{stack}.json"


def write_baselines() -> None:
    BASELINE_DIR.mkdir(exist_ok=True)
    for stack in STACKS:
        data = snapshot(run_stack(stack))
        for record in data.values():
            record.pop("aliases")  # a baseline is what is deployed: the names it has now
        baseline_path(stack).write_text(json.dumps(data, indent=1, sort_keys=True) + "\n")
        print(f"{baseline_path(stack).relative_to(REPO_ROOT)}: {len(data)} resources")


if __name__ == "__main__":
    write_baselines()
