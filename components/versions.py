"""Pinned versions: every image and tool version the platform runs, in one place.

The MLflow version is not repeated here: it is read from the image's locked
requirements file, so the image, the config default and the tests cannot drift.
"""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
MLFLOW_IMAGE_DIR = REPO_ROOT / "images" / "mlflow"
MLFLOW_REQUIREMENTS = MLFLOW_IMAGE_DIR / "requirements.txt"

# Third-party images, pinned by tag. nginx: the Debian-based variant on purpose (glibc
# crypt(), like the Debian nginx the end-to-end tests run), 1.30.6+ for its CVE fixes
# (see docs/policy.md, tests/static/test_nginx_config.py).
POSTGRES_IMAGE = "postgres:17.6-bookworm"
MINIO_IMAGE = "minio/minio:RELEASE.2025-04-22T22-12-26Z"
NGINX_IMAGE = "nginx:1.30.6"

# The lowest MLflow release without a known server advisory (see
# ../shared/advisories/mlflow-later.yaml and tests/static/).
MINIMUM_SAFE_MLFLOW = "3.17.0"


@lru_cache(maxsize=1)
def pinned_mlflow_version() -> str:
    """The `mlflow==X` pin of the image's locked requirements."""
    text = MLFLOW_REQUIREMENTS.read_text()
    match = re.search(r"^mlflow==([^\s#]+)", text, flags=re.MULTILINE)
    if not match:
        raise RuntimeError(f"{MLFLOW_REQUIREMENTS} does not pin mlflow==<version>")
    return match.group(1)


def version_tuple(version: str) -> tuple[int, ...]:
    """'3.17.2' -> (3, 17, 2); enough for the plain release numbers we pin."""
    return tuple(int(part) for part in re.findall(r"\d+", version)[:3])
