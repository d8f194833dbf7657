"""`make doctor`: what the first `make up` needs, checked before `pulumi` runs.

    python3 -m tools.doctor [--stack dev] [--project-dir DIR]

One line per check, `ok: ...` or `FAIL: ... fix: ...`; exit status 1 when a check fails.
Stdlib only (it runs before `pulumi install` made the venv), except the passphrase check,
which imports `cryptography` when there is a salt to check it against.

- The Pulumi CLI, at least PULUMI_CLI_MINIMUM (the `replaceWith` option the program uses).
- The Python `pulumi install` builds the venv with (PULUMI_PYTHON_CMD, else python3): PYTHON_MINIMUM.
- A Docker engine at the endpoint the program will use (docker stacks only).
- The passphrase against the stack's `encryptionsalt`, which otherwise fails much later
  with "incorrect passphrase".
"""

from __future__ import annotations

import argparse
import base64
import binascii
import hashlib
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from components.docker import engine
from components.versions import PULUMI_CLI_MINIMUM, PYTHON_MINIMUM, version_tuple

PROJECT_DIR = Path(__file__).resolve().parent.parent
NAMESPACE = "mlflow-platform"
INSTALL_PULUMI = "curl -fsSL https://get.pulumi.com | sh (or see https://www.pulumi.com/docs/install/)"
# Pulumi's passphrase secrets manager: PBKDF2-HMAC-SHA256 over an 8-byte salt, then AES-256-GCM
# of the word "pulumi" (pkg/secrets/passphrase in pulumi/pulumi).
PBKDF2_ITERATIONS = 1_000_000
SALT_CHECK_PLAINTEXT = b"pulumi"
COMMAND_TIMEOUT_SECONDS = 20.0
DOCKER_TIMEOUT_SECONDS = 10.0


@dataclass(frozen=True)
class Check:
    name: str
    ok: bool
    detail: str
    fix: str = ""
    # Passed without being checked (nothing to check it with): printed as `skip:`, not a failure.
    skipped: bool = False

    def line(self) -> str:
        if self.ok:
            return f"{'skip' if self.skipped else 'ok'}: {self.name}: {self.detail}"
        return f"FAIL: {self.name}: {self.detail}; fix: {self.fix}"


def _which(command: str, env: Mapping[str, str]) -> str | None:
    return shutil.which(command, path=env.get("PATH", os.defpath))


def _run(argv: list[str], env: Mapping[str, str], timeout: float = COMMAND_TIMEOUT_SECONDS) -> tuple[int, str]:
    """(exit status, stdout + stderr); 127 when it cannot start, 124 on a timeout."""
    try:
        done = subprocess.run(
            argv, env=dict(env), capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL
        )
    except subprocess.TimeoutExpired:
        return 124, f"no answer within {timeout:g} s"
    except OSError as exc:
        return 127, str(exc)
    return done.returncode, (done.stdout + done.stderr).strip()


# --- Pulumi.<stack>.yaml, read without PyYAML -------------------------------------------------------


def _unquote(value: str) -> str:
    value = value.split(" #", 1)[0].strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        return value[1:-1]
    return value


def stack_file(project_dir: Path, stack: str) -> Path:
    return project_dir / f"Pulumi.{stack}.yaml"


def encryption_salt(text: str) -> str | None:
    match = re.search(r"^encryptionsalt:[ \t]*(\S[^\n]*)$", text, flags=re.MULTILINE)
    return _unquote(match.group(1)) if match else None


def config_value(text: str, key: str, sub_key: str | None = None) -> str | None:
    """`mlflow-platform:<key>: value`, or `sub_key` of the `mlflow-platform:<key>:` block (one level)."""
    lines = text.splitlines()
    for index, line in enumerate(lines):
        match = re.match(rf"^(\s*){re.escape(NAMESPACE)}:{re.escape(key)}:[ \t]*(.*)$", line)
        if not match:
            continue
        inline = _unquote(match.group(2))
        if sub_key is None:
            return inline or None
        if inline:  # flow style: {host: ..., keepDataOnDestroy: ...}
            flow = re.search(rf"(?:^|[{{,\s]){re.escape(sub_key)}:\s*([^,}}]+)", inline)
            return _unquote(flow.group(1)) if flow else None
        indent = len(match.group(1))
        for child in lines[index + 1 :]:
            if not child.strip() or child.lstrip().startswith("#"):
                continue
            child_indent = len(child) - len(child.lstrip())
            if child_indent <= indent:
                break
            found = re.match(rf"^\s+{re.escape(sub_key)}:[ \t]*(.*)$", child)
            if found:
                value = _unquote(found.group(1))
                return None if value in ("", "null", "~") else value
        return None
    return None


# --- the checks ------------------------------------------------------------------------------------


def check_pulumi(env: Mapping[str, str]) -> Check:
    name = "Pulumi CLI"
    needed = f"mlflow-platform needs the Pulumi CLI {PULUMI_CLI_MINIMUM} or later"
    cli = _which("pulumi", env)
    if cli is None:
        return Check(name, False, f"`pulumi` is not on PATH; {needed}", f"install it: {INSTALL_PULUMI}")
    status, out = _run([cli, "version"], {**env, "PULUMI_SKIP_UPDATE_CHECK": "true"})
    match = re.search(r"v?(\d+\.\d+\.\d+)", out) if status == 0 else None
    if match is None:
        return Check(
            name,
            False,
            f"`{cli} version` did not print a version ({out[:200] or f'exit {status}'}); {needed}",
            f"reinstall it: {INSTALL_PULUMI}",
        )
    version = match.group(1)
    if version_tuple(version) < version_tuple(PULUMI_CLI_MINIMUM):
        return Check(
            name,
            False,
            f"{cli} is {version}, older than {PULUMI_CLI_MINIMUM}, the first whose engine "
            "supports the `replaceWith` resource option the program uses",
            f"upgrade it to {PULUMI_CLI_MINIMUM} or later: {INSTALL_PULUMI}",
        )
    return Check(name, True, f"{version} (>= {PULUMI_CLI_MINIMUM})")


def check_python(env: Mapping[str, str]) -> Check:
    minimum = ".".join(map(str, PYTHON_MINIMUM))
    name = f"Python for `pulumi install` (>= {minimum})"
    configured = env.get("PULUMI_PYTHON_CMD")
    command = configured or "python3"
    origin = "PULUMI_PYTHON_CMD" if configured else "python3 on PATH"
    fix = (
        f"install Python {minimum} or later (macOS ships 3.9: `brew install python@3.11`, or pyenv/uv) and "
        "point Pulumi at it: export PULUMI_PYTHON_CMD=/path/to/python3.11"
    )
    path = _which(command, env)
    if path is None:
        return Check(name, False, f"{command} ({origin}) is not found", fix)
    status, out = _run([path, "-c", "import sys; print(sys.version_info[:2])"], env)
    match = re.search(r"\((\d+),\s*(\d+)\)", out) if status == 0 else None
    if match is None:
        return Check(
            name, False, f"{path} ({origin}) did not report its version ({out[:200] or f'exit {status}'})", fix
        )
    version = (int(match.group(1)), int(match.group(2)))
    shown = f"{version[0]}.{version[1]}"
    if version < PYTHON_MINIMUM:
        return Check(name, False, f"{path} ({origin}) is Python {shown}", fix)
    return Check(name, True, f"{path} ({origin}) is Python {shown}")


def check_docker(env: Mapping[str, str], stack: str, stack_text: str | None) -> Check:
    name = "Docker engine"
    target = config_value(stack_text, "target") if stack_text else None
    if (target or ("aws" if stack == "prod" else "docker")) != "docker":
        return Check(name, True, f"not needed for STACK={stack} (target: {target or 'aws'})")
    configured = config_value(stack_text, "docker", "host") if stack_text else None
    host, source = engine.resolve_docker_host(configured, env=env)
    tried = f"{host} (from {source})"
    if engine.docker_cli(env) is None:
        return Check(
            name,
            False,
            f"no `docker` CLI on PATH to ask the engine at {tried}",
            f"install Docker Desktop, colima or the docker CLI; {engine.NO_ENGINE_HELP}",
        )
    version = engine.engine_version(host, env=env, timeout=DOCKER_TIMEOUT_SECONDS)
    if version is None:
        return Check(name, False, f"no Docker engine answers at {tried}", engine.NO_ENGINE_HELP)
    return Check(name, True, f"{version} at {tried}")


def _passphrase(env: Mapping[str, str], project_dir: Path) -> tuple[str | None, str]:
    """(passphrase, where from), the way the Pulumi CLI reads it; (None, why) when there is none."""
    if "PULUMI_CONFIG_PASSPHRASE" in env:
        return env["PULUMI_CONFIG_PASSPHRASE"], "PULUMI_CONFIG_PASSPHRASE"
    file = env.get("PULUMI_CONFIG_PASSPHRASE_FILE", "")
    if not file:
        return None, "neither PULUMI_CONFIG_PASSPHRASE nor PULUMI_CONFIG_PASSPHRASE_FILE is set"
    path = Path(file).absolute()  # relative to where pulumi runs, as the CLI reads it
    try:
        return path.read_text().strip(), f"PULUMI_CONFIG_PASSPHRASE_FILE={path}"
    except OSError as exc:
        return None, f"PULUMI_CONFIG_PASSPHRASE_FILE={path} cannot be read ({exc.strerror or exc})"


def passphrase_matches(salt_state: str, passphrase: str) -> bool:
    """Whether `passphrase` opens `encryptionsalt` (v1:<salt>:v1:<nonce>:<ciphertext+tag>, base64)."""
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    parts = salt_state.split(":")
    if len(parts) != 5 or parts[0] != "v1" or parts[2] != "v1":
        raise ValueError(f"not a v1 passphrase salt: {salt_state!r}")
    try:
        salt, nonce, sealed = (base64.b64decode(part, validate=True) for part in (parts[1], parts[3], parts[4]))
    except (binascii.Error, ValueError) as exc:
        raise ValueError(f"encryptionsalt is not valid base64: {exc}") from exc
    key = hashlib.pbkdf2_hmac("sha256", passphrase.encode(), salt, PBKDF2_ITERATIONS, dklen=32)
    try:
        return AESGCM(key).decrypt(nonce, sealed, None) == SALT_CHECK_PLAINTEXT
    except (InvalidTag, ValueError):
        return False


def check_passphrase(env: Mapping[str, str], project_dir: Path, stack: str, stack_text: str | None) -> Check:
    name = "stack passphrase"
    salt = encryption_salt(stack_text) if stack_text else None
    if not salt:
        return Check(name, True, f"no stack yet (no encryptionsalt in Pulumi.{stack}.yaml)")
    file = env.get("PULUMI_CONFIG_PASSPHRASE_FILE") or str(project_dir / ".pulumi-state" / "passphrase")
    fix = (
        f"restore the passphrase this stack was created with (the file {file} from your backup, or "
        "PULUMI_CONFIG_PASSPHRASE); for a fresh local stack with nothing worth keeping: "
        f"`pulumi stack rm {stack}` and delete the `encryptionsalt:` line from Pulumi.{stack}.yaml"
    )
    later = (
        f"Pulumi.{stack}.yaml has an encryptionsalt, and a salt without its passphrase fails later with "
        '"incorrect passphrase"'
    )
    passphrase, origin = _passphrase(env, project_dir)
    if passphrase is None:
        return Check(name, False, f"{later}, but {origin}", fix)
    try:
        matches = passphrase_matches(salt, passphrase)
    except ImportError:
        return Check(
            name,
            True,
            f"not verified: `cryptography` is not installed in {sys.executable} "
            "(`make doctor` uses .venv/bin/python once `pulumi install` made it)",
            skipped=True,
        )
    except ValueError as exc:
        return Check(name, False, f"{exc}", fix)
    if not matches:
        return Check(name, False, f"{later}, and {origin} is not it", fix)
    return Check(name, True, f"{origin} opens the encryptionsalt of Pulumi.{stack}.yaml")


def run_checks(stack: str, project_dir: Path = PROJECT_DIR, env: Mapping[str, str] | None = None) -> list[Check]:
    env = dict(os.environ if env is None else env)
    path = stack_file(project_dir, stack)
    stack_text = path.read_text() if path.is_file() else None
    return [
        check_pulumi(env),
        check_python(env),
        check_docker(env, stack, stack_text),
        check_passphrase(env, project_dir, stack, stack_text),
    ]


def main(argv: list[str] | None = None, env: Mapping[str, str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m tools.doctor", description=__doc__.splitlines()[0])
    parser.add_argument("--stack", default=(env if env is not None else os.environ).get("STACK", "dev"))
    parser.add_argument("--project-dir", type=Path, default=PROJECT_DIR)
    args = parser.parse_args(argv)
    checks = run_checks(args.stack, args.project_dir, env)
    for check in checks:
        print(check.line())
    failed = [check.name for check in checks if not check.ok]
    if failed:
        print(f"doctor: {len(failed)} check(s) failed ({', '.join(failed)}); fix them before `make up`")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
