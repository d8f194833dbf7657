"""testkit.mlflow_client: the in-process client's target is put back exactly, so one test's
server never receives another test's calls (a pinned registry URI once sent the restart
test's model registration to another topology's nginx: 401)."""

from __future__ import annotations

import os

import mlflow
import pytest

from testkit.mlflow_client import client_state, pointed_at, restore_client_state


@pytest.fixture
def no_registry_uri():
    """The state of a session where no registry URI was ever set (as at its start)."""
    saved = client_state()
    restore_client_state({**saved, "registry URI global": None, "MLFLOW_REGISTRY_URI": None})
    yield
    restore_client_state(saved)


def test_the_registry_uri_is_unset_again_after_the_block(no_registry_uri):
    with pointed_at("http://127.0.0.1:1", {"MLFLOW_TRACKING_USERNAME": "someone"}):
        assert mlflow.get_registry_uri() == "http://127.0.0.1:1"
        assert os.environ["MLFLOW_TRACKING_USERNAME"] == "someone"
    # Unset, not pinned: the registry follows whatever tracking URI comes next.
    assert client_state()["registry URI global"] is None
    assert "MLFLOW_REGISTRY_URI" not in os.environ
    assert "MLFLOW_TRACKING_USERNAME" not in os.environ
    assert mlflow.get_registry_uri() == mlflow.get_tracking_uri()


def test_the_session_tracking_uri_survives_a_block_that_unsets_it():
    session_uri = os.environ["MLFLOW_TRACKING_URI"]  # tests/conftest.py's stray store
    with pointed_at("http://127.0.0.1:1"):
        mlflow.set_tracking_uri(None)  # type: ignore[arg-type]  # what the tests used to do
        assert "MLFLOW_TRACKING_URI" not in os.environ
    assert os.environ["MLFLOW_TRACKING_URI"] == session_uri
    assert mlflow.get_tracking_uri() == session_uri


def test_every_change_is_seen_and_undone(no_registry_uri):
    before = client_state()
    mlflow.set_registry_uri("http://127.0.0.1:2")
    mlflow.set_workspace("team-a")
    changed = client_state()
    assert {name for name in before if before[name] != changed[name]} == {
        "registry URI global", "MLFLOW_REGISTRY_URI", "workspace of this thread", "MLFLOW_WORKSPACE",
    }  # fmt: skip
    restore_client_state(before)
    assert client_state() == before
