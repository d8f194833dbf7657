"""Real servers for the migration tests: one PostgreSQL and one S3 (SeaweedFS) per session,
a fresh database/bucket per test that needs one, and a source built with the real client."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import urllib.request
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from source_builder import build_source, snapshot  # noqa: E402

from testkit import LocalPostgres, LocalS3, ManagedProcess, free_port, wait_for_http  # noqa: E402
from testkit.server_venv import require_server_venv  # noqa: E402


@pytest.fixture(scope="session")
def postgres():
    with LocalPostgres() as pg:
        yield pg


@pytest.fixture(scope="session")
def s3():
    with LocalS3() as server:
        yield server


@pytest.fixture(scope="session")
def source(tmp_path_factory):
    """The user's mlflow.db + mlruns/, and what the client shows of them (with file contents)."""
    directory = tmp_path_factory.mktemp("laptop")
    info = build_source(directory)
    info["expected"] = snapshot(f"sqlite:///{info['db']}", download_dir=tmp_path_factory.mktemp("dl-source"))
    info["sha256"] = file_digest(info["db"])
    return info


@pytest.fixture
def new_database(postgres):
    """Create an empty database; returns (name, url)."""

    def make(prefix: str = "t") -> tuple[str, str]:
        name = f"{prefix}_{uuid.uuid4().hex[:8]}"
        postgres.create_database(name)
        return name, postgres.url(name)

    return make


@pytest.fixture
def new_bucket(s3):
    def make(prefix: str = "t") -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:8]}"
        s3.client().create_bucket(Bucket=name)
        return name

    return make


def file_digest(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def run_migrate(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    """`python -m migrate ...` as a user runs it; no ambient target URL or AWS settings leak in."""
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("AWS_", "MLFLOW_MIGRATE_", "MLFLOW_DB_", "MLFLOW_S3_", "PG"))
    }
    return subprocess.run(
        [sys.executable, "-m", "migrate", "--no-progress", *args],
        cwd=REPO,
        env={**base, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def migrate_env(s3: LocalS3, url: str | None = None) -> dict[str, str]:
    env = dict(s3.env())
    if url:
        env["MLFLOW_MIGRATE_TARGET_URL"] = url
    return env


def under_root(root: Path, replacement: str):
    """The expected rewrite, written independently of migrate.artifacts: locations under
    `root` (plain path or file:// URI) get `replacement` + the path below the root."""
    prefixes = (str(root), root.as_uri())

    def rewrite(uri):
        if not isinstance(uri, str):
            return uri
        for prefix in prefixes:
            if uri == prefix or uri.startswith(prefix + "/"):
                return replacement + uri[len(prefix) :].lstrip("/")
        return uri

    return rewrite


@contextmanager
def mlflow_server(
    backend_url: str, bucket: str, s3: LocalS3, logs: Path, extra_args: Sequence[str] = ()
) -> Iterator[str]:
    """The image's pinned MLflow (the server venv), in the platform's proxied-artifact mode, on a
    migrated target; a clean environment, so nothing of the test process leaks in. `extra_args`
    go after the platform's (`--enable-workspaces`)."""
    venv = require_server_venv()
    port = free_port()
    env = {
        "PATH": f"{venv / 'bin'}:/usr/bin:/bin",
        "LANG": "C.UTF-8",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        # No test here runs a job; MLflow's job runner would start seven huey consumer processes.
        "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false",
        **s3.env(),
        "MLFLOW_BACKEND_STORE_URI": backend_url,
    }
    proc = ManagedProcess(
        [
            str(venv / "bin" / "python"),
            "-m",
            "mlflow",
            "server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
            "--serve-artifacts",
            "--artifacts-destination",
            f"s3://{bucket}/",
            "--default-artifact-root",
            "mlflow-artifacts:/",
            *extra_args,
        ],
        logs,
        name="mlflow",
        env=env,
    )
    try:
        wait_for_http(f"http://127.0.0.1:{port}/health", timeout=90)
        # The client's first call probes server-info with a 3 s timeout and no retry; the server's
        # first answer to it (stores built lazily) can take longer on a busy machine. Let it.
        urllib.request.urlopen(f"http://127.0.0.1:{port}/api/3.0/mlflow/server-info", timeout=60).close()
    except TimeoutError:
        proc.stop()
        raise AssertionError("mlflow server did not start:\n" + proc.tail(60)) from None
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.stop(timeout=3)  # idle keep-alive connections would hold a graceful stop for 10 s
