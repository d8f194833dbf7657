"""Small helpers shared by the end-to-end test modules."""

from __future__ import annotations

import hashlib
import json
import os
import time
import uuid
from pathlib import Path

import requests
from prometheus_client.parser import text_string_to_metric_families

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


def get(url: str) -> requests.Response:
    # Straight to the server, as the scraper on the private network does: no proxy, no netrc.
    with requests.Session() as session:
        session.trust_env = False
        return session.get(url, timeout=30)


def scrape(url: str) -> dict[str, list]:
    """Samples by family name, as Prometheus reads them (a labelled family appears once a
    request has been counted in it)."""
    response = get(url + contract.METRICS_PATH)
    assert response.status_code == 200, response.text[:300]
    return {family.name: family.samples for family in text_string_to_metric_families(response.text)}


def sample_sum(samples: dict[str, list], family: str, suffix: str = "_total", **labels: str) -> float:
    """A family's `suffix` samples with these labels, summed over every worker and other label."""
    return sum(
        s.value
        for s in samples.get(family, [])
        if s.name == family + suffix and all(s.labels.get(k) == v for k, v in labels.items())
    )
