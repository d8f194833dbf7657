"""Which Docker engine the dev stack deploys to, and which platform it runs.

Stdlib only: `make doctor` (tools/doctor.py) asks the same questions before `pulumi` runs.
Nothing here runs at import time; the program calls it while it registers resources.

- The endpoint: `docker.host` from the stack config if set, else the active `docker context`
  (the docker CLI honours DOCKER_CONTEXT and DOCKER_HOST itself: Docker Desktop, colima, OrbStack
  and rootless dockerd each have their own socket), else the classic /var/run/docker.sock.
- The platform: pulumi-docker's `docker.Image` builds, when `build.platform` is unset, for the
  architecture of the *provider binary* (an x86_64 Pulumi under Rosetta builds an emulated amd64
  image on an arm64 engine), so the program asks the engine for its own OS/architecture.
"""

from __future__ import annotations

import os
import platform
import re
import shutil
import subprocess
from collections.abc import Mapping

DEFAULT_DOCKER_HOST = "unix:///var/run/docker.sock"
# The schemes the docker provider (and CLI) accept; config validation uses the same pattern.
DOCKER_HOST_PATTERN = r"^(unix|tcp|ssh|npipe)://"
CLI_TIMEOUT_SECONDS = 5.0

# Where an endpoint came from (logged by the program, printed by `make doctor`).
SOURCE_CONFIG = "config"
SOURCE_CONTEXT = "docker context"
SOURCE_DEFAULT = "default"

# platform.machine() spellings -> Go's GOARCH names (what Docker's platforms use).
GO_ARCH = {
    "x86_64": "amd64",
    "amd64": "amd64",
    "x64": "amd64",
    "aarch64": "arm64",
    "arm64": "arm64",
    "armv8l": "arm64",
    "armv7l": "arm",
    "armv7": "arm",
    "armv6l": "arm",
    "arm": "arm",
    "i386": "386",
    "i686": "386",
    "x86": "386",
    "386": "386",
    "ppc64le": "ppc64le",
    "s390x": "s390x",
    "riscv64": "riscv64",
    "mips64": "mips64",
    "loong64": "loong64",
}

NO_ENGINE_HELP = (
    "start Docker Desktop, colima (`colima start`) or dockerd, or point the stack at an engine "
    "with `pulumi config set mlflow-platform:docker.host <unix://...|tcp://...|ssh://...>`"
)


def platform_name(stack: str) -> str:
    """The platform component of `stack`, whose name prefixes every name on the engine."""
    return f"mlflow-{stack}"


def server_alias(index: int) -> str:
    """The `index`-th MLflow server: its network alias and the tail of its container's name."""
    return f"mlflow-{index}"


def server_addresses(replicas: int, port: int) -> list[str]:
    """`host:port` of every MLflow server on the stack's networks: where nginx proxies to and
    Prometheus scrapes (so also the Host headers MLflow must accept from the scraper)."""
    return [f"{server_alias(index)}:{port}" for index in range(replicas)]


def server_container_name(stack: str, index: int = 0) -> str:
    """The container `docker exec` reaches the `index`-th MLflow server of `stack` by (`make gc`)."""
    return f"{platform_name(stack)}-{server_alias(index)}"


def go_arch(machine: str) -> str:
    """'x86_64' -> 'amd64', 'aarch64' -> 'arm64'; an unknown name is returned lower-cased."""
    name = machine.strip().lower()
    return GO_ARCH.get(name, name)


def _environ(env: Mapping[str, str] | None) -> dict[str, str]:
    return dict(os.environ if env is None else env)


def docker_cli(env: Mapping[str, str] | None = None) -> str | None:
    """The docker CLI on PATH (of `env`), or None."""
    return shutil.which("docker", path=_environ(env).get("PATH", os.defpath))


def _docker(args: list[str], env: Mapping[str, str] | None, timeout: float) -> str | None:
    """stdout of `docker <args>`, stripped; None when there is no CLI, it fails or it times out."""
    environ = _environ(env)
    cli = docker_cli(environ)
    if cli is None:
        return None
    if args[:1] == ["--host"]:
        # The endpoint is explicit: nothing ambient may redirect (or conflict with) it.
        environ.pop("DOCKER_HOST", None)
        environ.pop("DOCKER_CONTEXT", None)
    try:
        done = subprocess.run(
            [cli, *args], env=environ, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
        )
    except (OSError, subprocess.SubprocessError):
        return None
    out = done.stdout.strip()
    return out if done.returncode == 0 and out else None


def resolve_docker_host(
    configured: str | None, env: Mapping[str, str] | None = None, timeout: float = CLI_TIMEOUT_SECONDS
) -> tuple[str, str]:
    """(endpoint, source): the configured host; else the active docker context's; else the default socket."""
    if configured:
        return configured, SOURCE_CONFIG
    host = _docker(["context", "inspect", "--format", "{{.Endpoints.docker.Host}}"], env, timeout)
    if host and re.match(DOCKER_HOST_PATTERN, host):
        return host, SOURCE_CONTEXT
    return DEFAULT_DOCKER_HOST, SOURCE_DEFAULT


def engine_version(host: str, env: Mapping[str, str] | None = None, timeout: float = CLI_TIMEOUT_SECONDS) -> str | None:
    """The engine's version at `host`, or None when no docker CLI or no engine answers."""
    return _docker(["--host", host, "version", "--format", "{{.Server.Version}}"], env, timeout)


def engine_platform(
    host: str, env: Mapping[str, str] | None = None, timeout: float = CLI_TIMEOUT_SECONDS
) -> str | None:
    """'linux/arm64': the OS/architecture of the engine at `host`, or None when it does not answer."""
    out = _docker(["--host", host, "version", "--format", "{{.Server.Os}}/{{.Server.Arch}}"], env, timeout)
    if not out:
        return None
    os_name, _, arch = out.partition("/")
    os_name, arch = os_name.strip().lower(), go_arch(arch)
    if not os_name or not arch or "<" in out:  # "<no value>": an old engine or an odd proxy
        return None
    return f"{os_name}/{arch}"


def machine_platform(env: Mapping[str, str] | None = None) -> str:
    """'linux/<this machine's architecture>': where a local engine would run, when none answers.

    An x86_64 Python under Rosetta reports x86_64 on an Apple silicon Mac; macOS tells
    (`sysctl -n sysctl.proc_translated` prints 1), and the engine there is arm64.
    """
    arch = go_arch(platform.machine())
    if platform.system() == "Darwin" and arch == "amd64":
        sysctl = shutil.which("sysctl", path=_environ(env).get("PATH", os.defpath) + os.pathsep + "/usr/sbin")
        if sysctl:
            try:
                done = subprocess.run(
                    [sysctl, "-n", "sysctl.proc_translated"],
                    capture_output=True,
                    text=True,
                    timeout=CLI_TIMEOUT_SECONDS,
                    stdin=subprocess.DEVNULL,
                )
                if done.returncode == 0 and done.stdout.strip() == "1":
                    arch = "arm64"
            except (OSError, subprocess.SubprocessError):
                pass
    return f"linux/{arch}"


def image_platform(
    host: str, env: Mapping[str, str] | None = None, timeout: float = CLI_TIMEOUT_SECONDS
) -> tuple[str, str]:
    """(platform, source) to build the MLflow image for: the engine's ("engine"), else this machine's ("machine")."""
    answered = engine_platform(host, env, timeout)
    if answered:
        return answered, "engine"
    return machine_platform(env), "machine"
