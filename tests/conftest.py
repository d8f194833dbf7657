"""Shared test setup. Test helpers are imported from one root, the `tests` package
(`from tests.pulumi_mocks import ...`); pytest.ini puts the repo root on sys.path."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

from testkit.mlflow_client import client_state, restore_client_state
from testkit.venvs import prebuild

REPO_ROOT = Path(__file__).resolve().parent.parent
# An in-process MLflow call made while no tracking URI is set (after a test restored the unset
# state) would create MLflow's default store, ./mlflow.db, in the repo. Point that default into
# a temp dir for the whole session instead; the end-to-end tests set their own URIs.
_STRAY_STORE = tempfile.TemporaryDirectory(prefix="mlflow-platform-tests-")
os.environ.setdefault("MLFLOW_TRACKING_URI", f"sqlite:///{_STRAY_STORE.name}/stray.db")


_LEFTOVER = REPO_ROOT / "mlflow.db"
# A developer's own mlflow.db in the checkout is theirs: only one this session made is removed.
_HAD_LEFTOVER = _LEFTOVER.exists()


def _check_client_left_as_found(before: dict[str, str | None], who: str) -> None:
    after = client_state()
    if after != before:
        restore_client_state(before)
        secret = ("PASSWORD", "TOKEN")
        changed = {
            name: "<changed>" if any(word in name for word in secret) else f"{before[name]!r} -> {after[name]!r}"
            for name in before
            if before[name] != after[name]
        }
        pytest.fail(f"{who} left mlflow's client state changed (use testkit.mlflow_client): {changed}")


# A test or fixture that leaves the in-process client pointed at its server (a URI, a registry
# URI, credentials, a workspace) sends a later test's calls there: fail the one that did it.
# Autouse fixtures are set up first in their scope, so the module one also sees module fixtures.
@pytest.fixture(autouse=True, scope="module")
def _mlflow_client_left_as_found_by_the_module():
    before = client_state()
    yield
    _check_client_left_as_found(before, "a module-scoped fixture of this module")


@pytest.fixture(autouse=True)
def _mlflow_client_left_as_found():
    before = client_state()
    yield
    _check_client_left_as_found(before, "the test")


def pytest_collection_finish(session: pytest.Session) -> None:
    """Start building the venvs that selected modules declare (PREBUILD_VENVS: (pins, name)
    pairs), in the order their tests run: on a fresh machine they take minutes, mostly downloads,
    which then overlap the tests that run before them instead of adding to the suite's time."""
    seen: set[object] = set()
    for item in session.items:
        module = getattr(item, "module", None)
        if module is not None and module not in seen:
            seen.add(module)
            for pins, name in getattr(module, "PREBUILD_VENVS", ()):
                prebuild(pins, name)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Leave no file in the repo. MLflow's default store lands here when a test unsets the
    session's MLFLOW_TRACKING_URI (`mlflow.set_tracking_uri(None)` does); the fixture above
    fails such a test, and this removes the file it made rather than leave it for `git status`."""
    if _LEFTOVER.exists() and not _HAD_LEFTOVER:
        _LEFTOVER.unlink()
        print(f"\nWARNING: a test created {_LEFTOVER} (MLflow's default store); removed it")
    _STRAY_STORE.cleanup()
