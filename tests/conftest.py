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


_LEFTOVER = REPO_ROOT / "mlflow.db"
# A developer's own mlflow.db in the checkout is theirs: only one this session made is removed.
_HAD_LEFTOVER = _LEFTOVER.exists()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Leave no file in the repo. The full suite still makes MLflow's default store here once
    (seen after tests/e2e/test_restart.py, not when that module runs alone; cause not found yet):
    remove it and say so, rather than leave it for the next `git status`."""
    if _LEFTOVER.exists() and not _HAD_LEFTOVER:
        _LEFTOVER.unlink()
        print(f"\nWARNING: a test created {_LEFTOVER} (MLflow's default store); removed it")
    _STRAY_STORE.cleanup()
