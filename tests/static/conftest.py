"""Static checks of what the program ships: the nginx config, the MLflow Dockerfile, pinned requirements."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

ON_CI = os.environ.get("CI") == "true"


def tool(name: str) -> str:
    """A linter from requirements-dev.txt (its wheel puts the binary beside this Python's scripts)."""
    found = shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))
    if found is None:
        pytest.fail(f"{name} is not installed: pip install -r requirements-dev.txt")
    return found
