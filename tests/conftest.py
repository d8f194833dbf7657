"""Shared test setup. Test helpers are imported from one root, the `tests` package
(`from tests.pulumi_mocks import ...`); pytest.ini puts the repo root on sys.path."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
# An in-process MLflow call made while no tracking URI is set (after a test restored the unset
# state) would create MLflow's default store, ./mlflow.db, in the repo. Point that default into
# a temp dir for the whole session instead; the end-to-end tests set their own URIs.
_STRAY_STORE = tempfile.TemporaryDirectory(prefix="mlflow-platform-tests-")
os.environ.setdefault("MLFLOW_TRACKING_URI", f"sqlite:///{_STRAY_STORE.name}/stray.db")


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """No test may leave a file in the repo: the default store is the one MLflow would make."""
    leftover = REPO_ROOT / "mlflow.db"
    if leftover.exists():
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        print(f"\nERROR: a test left {leftover} in the repo")
    _STRAY_STORE.cleanup()
