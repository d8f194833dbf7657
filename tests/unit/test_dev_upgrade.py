"""tools/dev_upgrade.py: which dev servers `make up` stops before an MLflow upgrade, and that it
backs up first or refuses."""

from __future__ import annotations

import subprocess

import pytest

from tools import dev_upgrade

PINNED = "3.17.2"


def test_the_version_is_read_from_our_image_tag_only():
    assert dev_upgrade.image_version("mlflow-platform/mlflow:3.16.0-0123456789ab") == "3.16.0"
    assert dev_upgrade.image_version("someone/else:3.16.0-x") is None
    assert dev_upgrade.image_version("sha256:abc") is None


def test_every_server_stops_when_one_runs_another_version_and_none_when_all_are_current():
    current = [("mlflow-dev-mlflow-0", f"mlflow-platform/mlflow:{PINNED}-aaa"),
               ("mlflow-dev-mlflow-1", f"mlflow-platform/mlflow:{PINNED}-aaa")]  # fmt: skip
    assert dev_upgrade.to_stop(current, PINNED) == []
    mixed = [current[0], ("mlflow-dev-mlflow-1", "mlflow-platform/mlflow:3.16.0-bbb")]
    assert dev_upgrade.to_stop(mixed, PINNED) == ["mlflow-dev-mlflow-0", "mlflow-dev-mlflow-1"]
    assert dev_upgrade.to_stop([], PINNED) == []


@pytest.fixture
def engine(monkeypatch):
    calls: list[list[str]] = []

    def run(argv, **kwargs):
        calls.append(list(argv))
        out = "mlflow-dev-mlflow-0\tmlflow-platform/mlflow:3.16.0-bbb\n" if argv[1] == "ps" else ""
        return subprocess.CompletedProcess(argv, 0, stdout=out, stderr="")

    monkeypatch.setattr(dev_upgrade, "docker_cli", lambda: "docker")
    monkeypatch.setattr(dev_upgrade, "pinned_mlflow_version", lambda: PINNED)
    monkeypatch.setattr(dev_upgrade.subprocess, "run", run)
    return calls


def test_backup_runs_before_the_servers_stop(engine, monkeypatch):
    monkeypatch.setattr(dev_upgrade, "has_make_target", lambda target: target == "backup")
    assert dev_upgrade.main(["--stack", "dev"], environ={}) == 0
    assert engine[1:] == [["make", "backup", "STACK=dev"], ["docker", "stop", "mlflow-dev-mlflow-0"]]


def test_without_a_backup_target_it_refuses_unless_told(engine, monkeypatch, capsys):
    monkeypatch.setattr(dev_upgrade, "has_make_target", lambda target: False)
    assert dev_upgrade.main(["--stack", "dev"], environ={}) == 1
    assert "refusing: this tree has no `make backup`" in capsys.readouterr().err
    assert [c for c in engine if c[1] == "stop"] == []
    assert dev_upgrade.main(["--stack", "dev"], environ={"UPGRADE_WITHOUT_BACKUP": "1"}) == 0
    assert engine[-1] == ["docker", "stop", "mlflow-dev-mlflow-0"]
