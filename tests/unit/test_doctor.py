"""`make doctor` (tools/doctor.py) against fake `pulumi`, `python3` and `docker` on a temp PATH.

Nothing here needs (or notices) a real Pulumi CLI or Docker engine on this machine, and
nothing is written into the repo: every stack file, passphrase and executable is in tmp_path.
"""

from __future__ import annotations

import base64
import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from components.versions import PULUMI_CLI_MINIMUM, PYTHON_MINIMUM, REPO_ROOT
from tests.fake_docker import COLIMA_SOCKET, fake, fake_docker
from tools import doctor

DEV_STACK = "config:\n  mlflow-platform:target: docker\n  mlflow-platform:docker:\n    keepDataOnDestroy: true\n"
# pulumi/pulumi pkg/secrets/passphrase/manager_test.go: a salt the real CLI made, for "password".
PULUMI_TEST_SALT = "v1:fozI5u6B030=:v1:F+6ZduKKd8G0/V7L:PGMFeIzwobWRKmEAzUdaQHqC5mMRIQ=="


def fake_pulumi(bin_dir: Path, version: str) -> None:
    fake(bin_dir, "pulumi", f'[ "$1" = version ] && echo "v{version}" && exit 0\nexit 2')


def fake_python(bin_dir: Path, version: tuple[int, int], name: str = "python3") -> Path:
    return fake(bin_dir, name, f'echo "({version[0]}, {version[1]})"')


def make_salt(passphrase: str) -> str:
    """An `encryptionsalt` as `pulumi stack init --secrets-provider passphrase` writes it."""
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    salt, nonce = os.urandom(8), os.urandom(12)
    key = hashlib.pbkdf2_hmac("sha256", passphrase.encode(), salt, 1_000_000, dklen=32)
    sealed = AESGCM(key).encrypt(nonce, b"pulumi", None)
    return ":".join(
        [
            "v1",
            base64.b64encode(salt).decode(),
            "v1",
            base64.b64encode(nonce).decode(),
            base64.b64encode(sealed).decode(),
        ]
    )


@pytest.fixture
def bin_dir(tmp_path) -> Path:
    path = tmp_path / "bin"
    path.mkdir()
    return path


@pytest.fixture
def project(tmp_path) -> Path:
    path = tmp_path / "project"
    path.mkdir()
    (path / "Pulumi.dev.yaml").write_text(DEV_STACK)
    return path


@pytest.fixture
def healthy(bin_dir, tmp_path) -> dict[str, str]:
    """An env where every check passes: the env the tests then break one thing of."""
    fake_pulumi(bin_dir, "3.272.0")
    fake_python(bin_dir, (3, 11))
    fake_docker(bin_dir)
    return {"PATH": str(bin_dir), "HOME": str(tmp_path)}


def run(env, project, capsys, stack="dev") -> tuple[int, dict[str, str]]:
    status = doctor.main(["--stack", stack, "--project-dir", str(project)], env=env)
    lines = capsys.readouterr().out.splitlines()
    by_check = {}
    for line in lines:
        for name in ("Pulumi CLI", "Python", "Docker engine", "stack passphrase"):
            if line.split(": ", 1)[-1].startswith(name):
                by_check[name] = line
    assert len(by_check) == 4, lines
    return status, by_check


def test_everything_in_place_passes(healthy, project, capsys):
    status, lines = run(healthy, project, capsys)
    assert status == 0
    assert all(line.startswith("ok: ") for line in lines.values()), lines


def test_no_pulumi_cli_fails_naming_the_cli_the_minimum_and_how_to_install(healthy, bin_dir, project, capsys):
    (bin_dir / "pulumi").unlink()
    status, lines = run(healthy, project, capsys)
    assert status != 0
    line = lines["Pulumi CLI"]
    assert line.startswith("FAIL: Pulumi CLI")
    assert PULUMI_CLI_MINIMUM == "3.207.0" and "3.207.0" in line
    assert "curl -fsSL https://get.pulumi.com | sh" in line and "https://www.pulumi.com/docs/install/" in line


def test_a_pulumi_cli_older_than_the_minimum_fails(healthy, bin_dir, project, capsys):
    fake_pulumi(bin_dir, "3.200.0")
    status, lines = run(healthy, project, capsys)
    assert status != 0
    assert lines["Pulumi CLI"].startswith("FAIL: ")
    assert "3.200.0" in lines["Pulumi CLI"] and "3.207.0" in lines["Pulumi CLI"]
    assert "replaceWith" in lines["Pulumi CLI"]


@pytest.mark.parametrize("version", ["3.207.0", "3.272.0"])
def test_a_recent_pulumi_cli_passes(healthy, bin_dir, project, capsys, version):
    fake_pulumi(bin_dir, version)
    status, lines = run(healthy, project, capsys)
    assert status == 0
    assert lines["Pulumi CLI"] == f"ok: Pulumi CLI: {version} (>= 3.207.0)"


def test_python_39_fails_and_names_pulumi_python_cmd(healthy, bin_dir, project, capsys):
    fake_python(bin_dir, (3, 9))
    status, lines = run(healthy, project, capsys)
    assert status != 0
    line = lines["Python"]
    assert line.startswith("FAIL: ") and "Python 3.9" in line
    assert "export PULUMI_PYTHON_CMD=/path/to/python3.11" in line and "3.10" in line


def test_pulumi_python_cmd_is_the_interpreter_checked(healthy, bin_dir, project, capsys):
    fake_python(bin_dir, (3, 9))
    newer = fake_python(bin_dir, (3, 12), name="python3.12")
    status, lines = run({**healthy, "PULUMI_PYTHON_CMD": str(newer)}, project, capsys)
    assert status == 0
    assert lines["Python"].startswith("ok: ") and str(newer) in lines["Python"] and "3.12" in lines["Python"]


def test_no_docker_engine_fails_naming_the_endpoint_tried(healthy, bin_dir, project, capsys):
    fake_docker(bin_dir, engine_platform=None)
    status, lines = run(healthy, project, capsys)
    assert status != 0
    line = lines["Docker engine"]
    assert line.startswith("FAIL: ") and f"{COLIMA_SOCKET} (from docker context)" in line
    assert "colima" in line and "mlflow-platform:docker.host" in line
    assert f"--host {COLIMA_SOCKET} version" in (bin_dir / "docker.log").read_text()


def test_the_configured_docker_host_is_the_one_asked(healthy, bin_dir, project, capsys):
    (project / "Pulumi.dev.yaml").write_text(
        DEV_STACK.replace("    keepDataOnDestroy", "    host: tcp://10.0.0.5:2376\n    keepDataOnDestroy")
    )
    status, lines = run(healthy, project, capsys)
    assert status == 0
    assert lines["Docker engine"] == "ok: Docker engine: 28.5.1 at tcp://10.0.0.5:2376 (from config)"
    assert "context" not in (bin_dir / "docker.log").read_text()


def test_no_docker_cli_fails_naming_the_default_socket(healthy, bin_dir, project, capsys):
    (bin_dir / "docker").unlink()
    status, lines = run(healthy, project, capsys)
    assert status != 0
    assert "unix:///var/run/docker.sock (from default)" in lines["Docker engine"]


def test_the_prod_stack_needs_no_docker_engine(healthy, bin_dir, project, capsys):
    (bin_dir / "docker").unlink()
    (project / "Pulumi.prod.yaml").write_text("config:\n  mlflow-platform:target: aws\n")
    status, lines = run(healthy, project, capsys, stack="prod")
    assert status == 0
    assert lines["Docker engine"].startswith("ok: Docker engine: not needed for STACK=prod")


def test_no_salt_is_no_stack_yet(healthy, project, capsys):
    status, lines = run({**healthy, "PULUMI_CONFIG_PASSPHRASE_FILE": str(project / "missing")}, project, capsys)
    assert status == 0
    assert lines["stack passphrase"].startswith("ok: stack passphrase: no stack yet")


@pytest.fixture(scope="module")
def salt() -> str:
    return make_salt("correct horse battery staple")


def with_salt(project: Path, salt: str) -> None:
    (project / "Pulumi.dev.yaml").write_text(f"encryptionsalt: {salt}\n{DEV_STACK}")


def test_the_right_passphrase_opens_the_salt(healthy, project, capsys, salt, tmp_path):
    with_salt(project, salt)
    status, lines = run({**healthy, "PULUMI_CONFIG_PASSPHRASE": "correct horse battery staple"}, project, capsys)
    assert status == 0 and lines["stack passphrase"].startswith("ok: "), lines
    # The file the Makefile points at, with the newline `make` wrote after it (the CLI trims it too).
    file = tmp_path / "passphrase"
    file.write_text("correct horse battery staple\n")
    status, lines = run({**healthy, "PULUMI_CONFIG_PASSPHRASE_FILE": str(file)}, project, capsys)
    assert status == 0 and lines["stack passphrase"].startswith("ok: "), lines


def test_a_wrong_passphrase_fails_before_pulumi_says_incorrect_passphrase(healthy, project, capsys, salt, tmp_path):
    with_salt(project, salt)
    file = tmp_path / "passphrase"
    file.write_text("a freshly generated one\n")
    status, lines = run({**healthy, "PULUMI_CONFIG_PASSPHRASE_FILE": str(file)}, project, capsys)
    assert status != 0
    line = lines["stack passphrase"]
    assert line.startswith("FAIL: ") and '"incorrect passphrase"' in line and str(file) in line
    assert "pulumi stack rm dev" in line and "encryptionsalt" in line


def test_a_salt_without_a_passphrase_fails(healthy, project, capsys, salt, tmp_path):
    with_salt(project, salt)
    status, lines = run({**healthy, "PULUMI_CONFIG_PASSPHRASE_FILE": str(tmp_path / "lost")}, project, capsys)
    assert status != 0
    line = lines["stack passphrase"]
    assert line.startswith("FAIL: ") and "cannot be read" in line and '"incorrect passphrase"' in line
    assert "restore the passphrase" in line


def test_a_salt_the_real_cli_made_is_read_the_same_way():
    assert doctor.passphrase_matches(PULUMI_TEST_SALT, "password")
    assert not doctor.passphrase_matches(PULUMI_TEST_SALT, "password123")
    with pytest.raises(ValueError):
        doctor.passphrase_matches("fozI5u6B030=:v1:F+6ZduL:PGMFeIzwobWRKmEAzUdaQHqC5mMRIQ==", "password")


def test_the_committed_dev_stack_reads_as_a_docker_stack_with_no_fixed_host():
    text = (REPO_ROOT / "Pulumi.dev.yaml").read_text()
    assert doctor.config_value(text, "target") == "docker"
    assert doctor.config_value(text, "docker", "host") is None
    assert (
        doctor.config_value("config:\n  mlflow-platform:docker: {host: 'ssh://me@box', x: 1}\n", "docker", "host")
        == "ssh://me@box"
    )


def test_make_doctor_without_the_pulumi_cli_exits_non_zero_and_says_how_to_install(tmp_path):
    """The issue's acceptance check, through the Makefile itself."""
    make = shutil.which("make")
    if make is None:
        pytest.skip("no make on this machine")
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake(bin_dir, "python3", f'exec "{sys.executable}" "$@"')
    env = {
        "PATH": str(bin_dir),
        "HOME": str(tmp_path),
        "PYTHONDONTWRITEBYTECODE": "1",
        "PULUMI_BACKEND_URL": f"file://{tmp_path / 'state'}",
        "PULUMI_CONFIG_PASSPHRASE_FILE": str(tmp_path / "passphrase"),
    }
    done = subprocess.run(
        [make, "-s", "doctor", "STACK=dev"], cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode != 0, done.stdout
    assert "FAIL: Pulumi CLI: `pulumi` is not on PATH" in done.stdout, done.stdout + done.stderr
    assert "3.207.0" in done.stdout and "curl -fsSL https://get.pulumi.com | sh" in done.stdout
    assert not (tmp_path / "passphrase").exists() and not (tmp_path / "state").exists()


def test_the_readme_prerequisites_state_the_minimums_the_doctor_checks():
    readme = (REPO_ROOT / "README.md").read_text()
    prerequisites = readme.split("## Prerequisites", 1)[1].split("\n## ", 1)[0]
    rows = {
        line.split("|")[1].strip(): line.split("|")[2].strip()
        for line in prerequisites.splitlines()
        if line.startswith("| ") and "---" not in line
    }
    assert rows["[Pulumi CLI](https://www.pulumi.com/docs/install/)"] == PULUMI_CLI_MINIMUM
    assert rows["Python"] == ".".join(map(str, PYTHON_MINIMUM))
    assert "make doctor" in prerequisites
