"""Fault 5 (issue 17): the servers' scratch space fills during an upload.

One MLflow server behind nginx, its scratch dir (TMPDIR: where proxied uploads are spooled) on a
64 MiB tmpfs, a writer thread logging metrics through the real client the whole time:
- an upload the client declares bigger than the space gets 507 naming the cause, at once (the
  client does not retry 507), before a byte is spooled;
- a chunked upload (no length) that fills the disk mid-spool gets 507 too, and its partial
  spool file is gone;
- the server stays healthy and takes the next upload; no acknowledged metric write is lost or
  doubled.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import mlflow
import pytest
import requests
from mlflow import MlflowClient

from images.mlflow import server_contract as contract
from testkit import topology
from testkit.server_venv import ServerVenvError, require_server_venv
from testkit.topology import DevTopology

from .load import WriterLoad

pytestmark = [pytest.mark.e2e, pytest.mark.faults]

SCRATCH_BYTES = 64 * 2**20


class SmallScratchTopology(DevTopology):
    """DevTopology whose servers' scratch dirs are tmpfs mounts of `scratch_bytes`."""

    def __init__(self, *args, scratch_bytes: int, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.scratch_bytes = scratch_bytes
        self.mounts: list[str] = []

    def _create_instances(self) -> None:
        super()._create_instances()
        for inst in self.instances:
            subprocess.run(
                ["mount", "-t", "tmpfs", "-o", f"size={self.scratch_bytes},mode=0700", "tmpfs", inst.spec.scratch_dir],
                check=True,
            )
            self.mounts.append(inst.spec.scratch_dir)

    def stop(self) -> None:
        try:
            self.stop_mlflow()
        finally:
            while self.mounts:
                # Lazy: a server worker killed a moment ago may still hold its cwd (the scratch dir).
                subprocess.run(["umount", "--lazy", self.mounts.pop()], check=True)
            super().stop()


@pytest.fixture(scope="module")
def small_scratch():
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.fail("mounting the tmpfs scratch needs root and mount(8)", pytrace=False)
    if topology.nginx_binary() is None:
        pytest.fail("nginx is not installed", pytrace=False)
    try:
        require_server_venv()
    except ServerVenvError as error:
        pytest.fail(str(error), pytrace=False)
    topo = SmallScratchTopology(servers=1, scratch_bytes=SCRATCH_BYTES, log_archive_dir=os.environ.get("E2E_LOG_DIR"))
    topo.start()
    try:
        with topo.tracking_env():
            yield topo
    finally:
        topo.stop()


def spool_files(scratch: str) -> list[str]:
    """What is left in the scratch dir besides the audit log and the Prometheus exporter's files."""
    kept = {Path(scratch) / contract.AUDIT_LOG_SUBDIR, Path(scratch) / contract.METRICS_SUBDIR}
    return [str(p) for p in Path(scratch).rglob("*") if p.is_file() and not kept & set(p.parents)]


def test_a_full_scratch_answers_507_fast_and_loses_no_acked_write(small_scratch, tmp_path, record_fault):
    topo = small_scratch
    scratch = topo.instances[0].spec.scratch_dir
    client = MlflowClient()
    experiment_id = client.create_experiment(f"full-scratch-{os.getpid()}")
    run = client.create_run(experiment_id)
    run_id = run.info.run_id
    load = WriterLoad(experiment_id, threads=1).start()
    try:
        load.wait_for_acks(10)
        big = tmp_path / "big.bin"
        with big.open("wb") as f:
            f.truncate(2 * SCRATCH_BYTES)
        fault_at = started = time.monotonic()
        with pytest.raises(requests.HTTPError) as declared:
            mlflow.log_artifact(str(big), run_id=run_id)
        declared_seconds = time.monotonic() - started
        assert "507" in str(declared.value) and "the server's upload space (64 MiB) is full" in str(declared.value)
        assert declared_seconds < 10, f"{declared_seconds:.1f} s: the client retried"

        # No Content-Length: the guard cannot refuse up front; the spool hits ENOSPC mid-way.
        def chunks():
            for _ in range(2 * SCRATCH_BYTES // 2**20):
                yield b"\0" * 2**20

        url = f"{topo.tracking_uri}/api/2.0/mlflow-artifacts/artifacts/{run.info.experiment_id}/{run_id}/artifacts/chunked.bin"
        started = time.monotonic()
        response = requests.put(url, data=chunks(), auth=topo.credentials, timeout=60)
        assert response.status_code == 507, response.text[:300]
        assert "upload space (64 MiB) is full" in response.json()["message"]
        assert time.monotonic() - started < 30
        assert spool_files(scratch) == []

        assert requests.get(f"{topo.instances[0].url}{contract.HEALTH_PATH}", timeout=10).status_code == 200
        small = tmp_path / "small.txt"
        small.write_text("fits")
        mlflow.log_artifact(str(small), run_id=run_id)
        assert [f.path for f in client.list_artifacts(run_id)] == ["small.txt"]
        load.wait_for_acks(10)
    finally:
        load.stop()

    outcome = load.outcome(fault_at)
    record_fault(outcome.row("the servers' scratch (64 MiB) fills during uploads"))
    assert load.errors() == []
    assert (outcome.lost, outcome.duplicates) == (0, 0), outcome
    assert topo.error_lines() == {name: [] for name in topo.error_lines()}
