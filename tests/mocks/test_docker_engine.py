"""The dev stack's Docker endpoint and image platform, from the engine the program finds.

The whole program under mocks with a fake `docker` on a temp PATH (the only thing on it), so
what the machine running the tests has (a docker CLI, an engine, neither) does not matter.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys

import pulumi
import pytest

from components.docker import engine
from tests.fake_docker import COLIMA_SOCKET, docker_calls, fake, fake_docker
from tests.pulumi_mocks import REPO_ROOT, run_program, stack_config

IMAGE = "docker:index/image:Image"


@pytest.fixture
def bin_dir(tmp_path, monkeypatch):
    path = tmp_path / "bin"
    path.mkdir()
    monkeypatch.setenv("PATH", str(path))
    monkeypatch.delenv("DOCKER_HOST", raising=False)
    monkeypatch.delenv("DOCKER_CONTEXT", raising=False)
    return path


@pytest.fixture
def logged(monkeypatch) -> list[str]:
    messages: list[str] = []
    monkeypatch.setattr(pulumi.log, "info", lambda message, *args, **kwargs: messages.append(message))
    return messages


def provider_host(run) -> str:
    return run.one("pulumi:providers:docker").inputs["host"]


def build_platform(run) -> str:
    return run.one(IMAGE).inputs["build"]["platform"]


def this_machine() -> str:
    return f"linux/{engine.go_arch(platform.machine())}"


def test_the_active_docker_context_is_the_endpoint(bin_dir, logged):
    fake_docker(bin_dir)
    run = run_program(stack_config("dev"), stack="dev")
    assert provider_host(run) == COLIMA_SOCKET
    assert "context inspect --format {{.Endpoints.docker.Host}}" in docker_calls(bin_dir)
    assert f"Docker engine: {COLIMA_SOCKET} (from docker context)" in logged


def test_the_configured_host_wins_and_no_context_is_asked(bin_dir, logged):
    fake_docker(bin_dir)
    config = stack_config("dev")
    config["mlflow-platform:docker"] = json.dumps({"host": "tcp://10.0.0.5:2376", "keepDataOnDestroy": True})
    run = run_program(config, stack="dev")
    assert provider_host(run) == "tcp://10.0.0.5:2376"
    calls = docker_calls(bin_dir)
    assert not any(call.startswith("context") for call in calls), calls
    # The engine is still asked its platform, at the configured endpoint.
    assert calls == ["--host tcp://10.0.0.5:2376 version --format {{.Server.Os}}/{{.Server.Arch}}"]
    assert "Docker engine: tcp://10.0.0.5:2376 (from config)" in logged


def test_without_a_docker_cli_the_default_socket_and_this_machines_arch(bin_dir, logged):
    run = run_program(stack_config("dev"), stack="dev")
    assert provider_host(run) == "unix:///var/run/docker.sock"
    assert build_platform(run) == this_machine()
    assert "Docker engine: unix:///var/run/docker.sock (from default)" in logged
    (hint,) = [m for m in logged if m.startswith("no Docker engine answers")]
    assert "colima" in hint and "mlflow-platform:docker.host" in hint and this_machine() in hint


def test_the_image_is_built_for_the_engines_platform(bin_dir, logged):
    fake_docker(bin_dir, engine_platform="linux/arm64")
    run = run_program(stack_config("dev"), stack="dev")
    assert build_platform(run) == "linux/arm64"
    assert f"--host {COLIMA_SOCKET} version --format {{{{.Server.Os}}}}/{{{{.Server.Arch}}}}" in docker_calls(bin_dir)
    assert "MLflow image platform: linux/arm64 (the engine's)" in logged


def test_an_engine_that_does_not_answer_gives_this_machines_arch(bin_dir, logged):
    fake_docker(bin_dir, engine_platform=None)
    run = run_program(stack_config("dev"), stack="dev")
    assert provider_host(run) == COLIMA_SOCKET
    assert build_platform(run) == this_machine()
    assert any(m.startswith(f"no Docker engine answers at {COLIMA_SOCKET}") for m in logged), logged


def test_an_amd64_engine_and_an_odd_answer(bin_dir):
    fake_docker(bin_dir, engine_platform="linux/amd64")
    assert engine.image_platform(COLIMA_SOCKET) == ("linux/amd64", "engine")
    fake_docker(bin_dir, engine_platform="<no value>/<no value>")
    assert engine.image_platform(COLIMA_SOCKET) == (this_machine(), "machine")


def test_a_context_that_prints_no_endpoint_falls_back_to_the_default(bin_dir):
    fake_docker(bin_dir, context="")
    assert engine.resolve_docker_host(None) == ("unix:///var/run/docker.sock", "default")


@pytest.mark.parametrize(
    "machine, arch",
    [
        ("x86_64", "amd64"),
        ("AMD64", "amd64"),
        ("aarch64", "arm64"),
        ("arm64", "arm64"),
        ("armv7l", "arm"),
        ("i686", "386"),
        ("ppc64le", "ppc64le"),
        ("s390x", "s390x"),
    ],
)
def test_machine_names_map_to_go_arch(machine, arch):
    assert engine.go_arch(machine) == arch


@pytest.mark.parametrize("translated, expected", [("1", "linux/arm64"), ("0", "linux/amd64")])
def test_an_x86_python_under_rosetta_still_means_an_arm64_mac(bin_dir, monkeypatch, translated, expected):
    monkeypatch.setattr(platform, "system", lambda: "Darwin")
    monkeypatch.setattr(platform, "machine", lambda: "x86_64")
    fake(bin_dir, "sysctl", f'[ "$2" = sysctl.proc_translated ] && echo {translated}')
    assert engine.machine_platform() == expected


def test_nothing_is_resolved_at_import_time(bin_dir):
    fake_docker(bin_dir)
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT), "PYTHONDONTWRITEBYTECODE": "1"}
    done = subprocess.run(
        [sys.executable, "-c", "import components.docker.platform, components.docker.engine"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert docker_calls(bin_dir) == []
