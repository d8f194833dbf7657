"""No resource input may depend on where the repo is checked out.

A laptop deploys from ~/src/mlflow-platform, CI from /home/runner/work/...: any input that
carries the path (the image build's context or Dockerfile, a file read by absolute path) shows
a diff on the other machine, and for the image a rebuild and a push of the same tag into an
IMMUTABLE repository, which fails the `up`. So: run the whole program under mocks from two
copies of the repo at different paths and compare every input of every resource.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.pulumi_mocks import REPO_ROOT

# Runs inside a copy: the program under mocks, every resource's inputs printed as JSON.
DUMP = r"""
import json, sys
from tests.pulumi_mocks import reveal, run_program, stack_config
from tests.mocks.aws_fixtures import aws_calls, aws_outputs
stack, extra = sys.argv[1], json.loads(sys.argv[2])
kwargs = {"outputs": aws_outputs, "calls": aws_calls} if stack == "prod" else {}
config = {**stack_config(stack), **{key: json.dumps(value) for key, value in extra.items()}}
run = run_program(config, stack=stack, **kwargs)
rows = sorted([r.typ, r.name, r.parent, reveal(r.inputs)] for r in run.resources)
print(json.dumps({"resources": rows, "outputs": run.outputs}, sort_keys=True, default=str))
"""


def tracked_files() -> list[str]:
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=REPO_ROOT,
        check=True,
        capture_output=True,
    ).stdout
    return [name for name in listed.decode().split("\0") if name and (REPO_ROOT / name).is_file()]


def copy_repo(destination: Path) -> Path:
    for name in tracked_files():
        target = destination / name
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO_ROOT / name, target)
    return destination


def program_inputs(checkout: Path, stack: str, extra: dict) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PULUMI_")}
    env["PYTHONPATH"] = str(checkout)
    done = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", DUMP, stack, json.dumps(extra)],
        cwd=checkout,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def checkouts(tmp_path_factory):
    first = copy_repo(tmp_path_factory.mktemp("laptop") / "src" / "mlflow-platform")
    second = copy_repo(tmp_path_factory.mktemp("ci") / "home" / "runner" / "work" / "renamed-checkout")
    return first, second


# observability.enabled uploads files of the repo (rules, provisioning, dashboards): their content.
CONFIGS = {
    "dev": ("dev", {}),
    "prod": ("prod", {}),
    "dev-observability": ("dev", {"mlflow-platform:observability": {"enabled": True}}),
}


@pytest.mark.parametrize("case", sorted(CONFIGS))
def test_every_input_is_the_same_from_two_checkout_paths(checkouts, case):
    stack, extra = CONFIGS[case]
    first, second = (program_inputs(path, stack, extra) for path in checkouts)
    assert len(first["resources"]) > 20
    assert len(first["resources"]) == len(second["resources"])
    differences = [(a[0], a[1]) for a, b in zip(first["resources"], second["resources"], strict=True) if a != b]
    assert differences == [], f"inputs that depend on the checkout path: {differences}"
    assert first["outputs"] == second["outputs"]
    # And nothing carries either path at all.
    for checkout in checkouts:
        assert str(checkout) not in json.dumps(first) + json.dumps(second)
