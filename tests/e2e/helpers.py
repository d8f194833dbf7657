"""Small helpers shared by the end-to-end test modules."""

from __future__ import annotations

import hashlib
import os
import uuid
from pathlib import Path

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
