"""testkit/venvs.py: the one builder of every test venv installs exactly a lock file's pins and
refuses a closure that is not whole."""

from __future__ import annotations

import subprocess
import threading
import time

import pytest

from testkit import venvs
from testkit.venvs import VenvBuildError, build_venv


def test_a_venv_gets_exactly_the_pins_and_replaces_what_an_interrupted_build_left(tmp_path):
    lock = tmp_path / "lock.txt"
    lock.write_text("six==1.16.0\n")
    venv = tmp_path / "venv"
    (venv / "bin").mkdir(parents=True)
    stray = venv / "bin" / "stray"
    stray.write_text("left by an interrupted build")
    python = build_venv(venv, lock)
    assert not stray.exists()
    shown = subprocess.run(
        [str(python), "-c", "import six, sys; print(six.__version__, sys.prefix)"],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert shown.stdout.split() == ["1.16.0", str(tmp_path / "venv")]


def test_a_lock_missing_a_dependency_fails_at_the_check_with_the_installers_words(tmp_path):
    # --no-deps: requests without urllib3, idna, certifi, charset-normalizer is not a closure.
    lock = tmp_path / "lock.txt"
    lock.write_text("requests==2.32.3\n")
    with pytest.raises(VenvBuildError, match=r"failed at `uv pip check`:(.|\n)*urllib3"):
        build_venv(tmp_path / "venv", lock)


def test_a_prebuilt_venv_is_built_once_and_a_test_asking_meanwhile_waits_for_it(tmp_path, monkeypatch):
    """The background prebuild and a test's own call meet on the lock: one build, same venv."""
    monkeypatch.setenv("MLFLOW_PLATFORM_CACHE", str(tmp_path / "cache"))
    builds: list[str] = []
    started = threading.Event()

    def slow_build(venv, requirements, **_):
        builds.append(venv.name)
        started.set()
        time.sleep(0.5)
        (venv / "bin").mkdir(parents=True)
        return venv / "bin" / "python"

    monkeypatch.setattr(venvs, "build_venv", slow_build)
    pins = tmp_path / "pins.txt"
    pins.write_text("six==1.16.0\n")
    venvs.prebuild(pins, "old")
    assert started.wait(10)
    venv = venvs.cached_venv(pins, "old")  # arrives mid-build: waits, does not build again
    assert builds == [venv.name] and (venv / "bin").is_dir()
    assert venvs.cached_venv(pins, "old") == venv and len(builds) == 1
    pins.write_text("six==1.17.0\n")  # other pins, other venv
    assert venvs.cached_venv(pins, "old") != venv and len(builds) == 2
