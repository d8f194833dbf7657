"""The PostgreSQL wrapper entrypoint, run for real with bash against stand-in commands.

It must: start the image's entrypoint with the given args, set the role's password from the
secret file once the server answers (never putting it in an argv), forward stop signals, and
exit with the server's status.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from components.specs.postgres import ENTRYPOINT_SCRIPT

STUBS = {
    # The "server": records its args, runs until signalled, exits 0 on INT (fast shutdown).
    "docker-entrypoint.sh": """#!/usr/bin/env bash
echo "$@" > "$STUB_LOG/server-args"
echo $$ > "$STUB_LOG/server-pid"
trap 'echo INT > "$STUB_LOG/server-signal"; exit 0' INT
trap 'echo TERM > "$STUB_LOG/server-signal"; exit 0' TERM
touch "$STUB_LOG/server-up"
while true; do sleep 0.1; done
""",
    # Ready once the server is up.
    "pg_isready": """#!/usr/bin/env bash
test -e "$STUB_LOG/server-up"
""",
    # Records argv and the SQL it is fed, expanding the \\set backtick like psql does.
    "psql": """#!/usr/bin/env bash
echo "$@" > "$STUB_LOG/psql-args"
cat > "$STUB_LOG/psql-stdin"
""",
}


@pytest.fixture
def stubbed(tmp_path):
    bin_dir, log_dir = tmp_path / "bin", tmp_path / "log"
    bin_dir.mkdir()
    log_dir.mkdir()
    for name, text in STUBS.items():
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(0o755)
    script = tmp_path / "entrypoint"
    script.write_text(ENTRYPOINT_SCRIPT)
    script.chmod(0o755)
    secret = tmp_path / "password"
    secret.write_text("s3cret-from-file")
    env = {
        **os.environ,
        "PATH": f"{bin_dir}:{os.environ['PATH']}",
        "STUB_LOG": str(log_dir),
        "POSTGRES_USER": "mlflow",
        "POSTGRES_DB": "mlflow",
        "POSTGRES_PASSWORD_FILE": str(secret),
    }
    return script, log_dir, env


def wait_for(path: Path, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert time.monotonic() < deadline, f"{path.name} never appeared"
        time.sleep(0.05)


def test_syncs_the_password_from_the_file_and_stops_on_int(stubbed):
    script, log, env = stubbed
    process = subprocess.Popen([str(script), "postgres"], env=env)
    try:
        wait_for(log / "psql-stdin")
        time.sleep(0.2)
        sql = (log / "psql-stdin").read_text()
        assert '\\set password `cat "$POSTGRES_PASSWORD_FILE"`' in sql
        assert "ALTER ROLE CURRENT_USER PASSWORD :'password';" in sql
        argv = (log / "psql-args").read_text()
        assert "s3cret" not in argv and "--username mlflow --dbname mlflow" in argv
        assert (log / "server-args").read_text().strip() == "postgres"
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=10) == 0
        assert (log / "server-signal").read_text().strip() == "INT"
    finally:
        if process.poll() is None:
            process.kill()
        # The stand-in server runs in its own process group (the wrapper uses job control).
        pid_file = log / "server-pid"
        if pid_file.exists():
            try:
                os.kill(int(pid_file.read_text()), signal.SIGKILL)
            except ProcessLookupError:
                pass


def test_a_server_that_dies_ends_the_wrapper_with_its_status(stubbed, tmp_path):
    script, log, env = stubbed
    failing = tmp_path / "bin" / "docker-entrypoint.sh"
    failing.write_text("#!/usr/bin/env bash\nexit 3\n")
    result = subprocess.run([str(script), "postgres"], env=env, timeout=20)
    assert result.returncode == 3
    assert not (log / "psql-stdin").exists()


def test_script_is_valid_bash():
    assert subprocess.run(["bash", "-n"], input=ENTRYPOINT_SCRIPT, text=True).returncode == 0
