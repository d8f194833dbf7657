"""Small helpers shared by the end-to-end test modules."""

from __future__ import annotations

import hashlib
import json
import os
import time
import uuid
from pathlib import Path

from images.mlflow import server_contract as contract

MODEL_CODE = """
import mlflow
from mlflow.pyfunc import PythonModel


class Affine(PythonModel):
    def predict(self, context, model_input, params=None):
        return model_input["x"] * 2 + 1


mlflow.models.set_model(Affine())
"""


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def write_random(path: Path, size: int) -> str:
    """A file of random bytes (incompressible, so nothing shortcuts the transfer); its SHA-256."""
    digest = hashlib.sha256()
    with open(path, "wb") as handle:
        left = size
        while left:
            chunk = os.urandom(min(left, 8 << 20))
            digest.update(chunk)
            handle.write(chunk)
            left -= len(chunk)
    return digest.hexdigest()


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def audit_lines(topo) -> list[dict]:
    """Every server's audit.jsonl, parsed (each line must be one JSON object)."""
    lines = []
    for inst in topo.instances:
        path = Path(inst.spec.scratch_dir) / contract.AUDIT_LOG_SUBDIR / contract.AUDIT_LOG_FILE
        if path.exists():
            lines += [json.loads(line) for line in path.read_text().splitlines()]
    return lines


def server_environments(topo) -> list[tuple[int, set[str], str]]:
    """(pid, variable names, raw environment) of every process of every server of `topo`: what
    each one was exec'd with, after the boot step."""
    from testkit.processes import _descendants

    found = []
    for inst in topo.instances:
        for pid in [inst.process.pid, *_descendants(inst.process.pid)]:
            try:
                environ = Path(f"/proc/{pid}/environ").read_bytes().decode(errors="replace")
            except OSError:
                continue
            found.append((pid, {entry.partition("=")[0] for entry in environ.split("\0")}, environ))
    return found


def wait_for(find, timeout: float = 10.0) -> list:
    """`find()` once it returns something: a log line is written after its response is sent
    (nginx logs an early answer, a 413 before the body, only after its lingering close)."""
    deadline = time.monotonic() + timeout
    while not (found := find()) and time.monotonic() < deadline:
        time.sleep(0.05)
    return found
