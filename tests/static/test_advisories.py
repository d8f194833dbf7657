"""The offline known-vulnerability check (tools/advisories.py) and what it says about our pins."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
from packaging.version import Version

from components.versions import MINIMUM_SAFE_MLFLOW, MLFLOW_REQUIREMENTS, REPO_ROOT, pinned_mlflow_version
from tests.static.conftest import ON_CI
from tools import advisories
from tools.advisories import Pin, affects, check_files, check_pins, load_mlflow_later, normalize, read_pins

DATA = advisories.DEFAULT_ADVISORIES
if not (DATA / "pypa").is_dir():
    # The project's CI has shared/ beside the clone; GitHub Actions has not, and runs pip-audit instead.
    if ON_CI and os.environ.get("GITHUB_ACTIONS") != "true":
        raise RuntimeError(f"CI needs the advisory data at {DATA} (shared/ beside the clone)")
    pytest.skip(f"no advisory data at {DATA} (pip-audit covers this where the network allows)", allow_module_level=True)

LOCKS = [MLFLOW_REQUIREMENTS, REPO_ROOT / "requirements.txt", REPO_ROOT / "requirements-dev.txt"]


# ---- our pins --------------------------------------------------------------------------------


@pytest.mark.parametrize("lock", LOCKS, ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_no_pinned_package_has_a_known_vulnerability(lock):
    report = check_files([lock], DATA)
    assert report.unpinned == [], "every requirement must be pinned with =="
    assert [str(f) for f in report.findings] == []


def test_the_image_lock_is_checked_whole():
    pins, _ = read_pins(MLFLOW_REQUIREMENTS)
    lines = [line for line in MLFLOW_REQUIREMENTS.read_text().splitlines() if line and not line.startswith("#")]
    assert len(pins) == len(lines) > 50
    assert {"mlflow", "werkzeug", "flask", "jinja2", "gunicorn", "sqlalchemy"} <= {p.name for p in pins}


def test_minimum_safe_mlflow_is_at_or_above_every_fixed_release():
    fixed = [Version(str(e["fixed"])) for e in load_mlflow_later(DATA / "mlflow-later.yaml") if "fixed" in e]
    assert fixed and Version(MINIMUM_SAFE_MLFLOW) >= max(fixed)
    assert Version(MINIMUM_SAFE_MLFLOW) >= advisories.minimum_safe_mlflow(DATA)  # pypa/mlflow too
    # And nothing matches it, "affected: <=X" entries (no fixed release) included.
    assert check_pins([Pin("mlflow", MINIMUM_SAFE_MLFLOW, "components/versions.py")], DATA).findings == []


def test_the_image_pins_mlflow_at_or_above_the_minimum():
    assert Version(pinned_mlflow_version()) >= Version(MINIMUM_SAFE_MLFLOW)


def test_an_advisory_without_a_fixed_release_is_reported_for_manual_confirmation():
    report = check_pins([Pin("mlflow", pinned_mlflow_version(), "requirements.txt:1")], DATA)
    assert report.ok
    assert len(report.manual) == 1 and "CVE-2026-64849" in report.manual[0] and "mlflow PR 24258" in report.manual[0]


# ---- it finds what it should -----------------------------------------------------------------


def write(tmp_path, text: str, name: str = "requirements.txt"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_detects_an_old_werkzeug(tmp_path):
    report = check_files([write(tmp_path, "Werkzeug==2.2.2\n")], DATA)
    ids = {f.advisory for f in report.findings}
    # CVE-2023-25577 (multipart DoS) and CVE-2023-23934 (nameless cookies), both fixed in 2.2.3.
    assert {"PYSEC-2023-58", "PYSEC-2023-57"} <= ids
    assert not report.ok


def test_detects_an_old_mlflow_from_both_sources(tmp_path):
    report = check_files([write(tmp_path, "mlflow==3.8.0\n")], DATA)
    ids = {f.advisory for f in report.findings}
    # mlflow-later.yaml: fixed releases above 3.8.0, and the "affected <=3.8.1" entry.
    assert {"CVE-2026-2393", "CVE-2026-2652", "CVE-2026-2635", "CVE-2026-115886", "CVE-2025-15381"} <= ids
    old = check_files([write(tmp_path, "mlflow==2.9.2\n", "old.txt")], DATA)
    assert any(f.advisory.startswith(("PYSEC-", "GHSA-")) for f in old.findings)  # from pypa/mlflow


def test_the_first_fixed_release_is_clean(tmp_path):
    assert check_files([write(tmp_path, "werkzeug==3.0.6\njinja2==3.1.6\n")], DATA).findings == []


def test_names_are_normalized_and_includes_followed(tmp_path):
    write(tmp_path, "Jinja2 == 2.10  # old\n", "base.txt")
    top = write(tmp_path, "-r base.txt\nrequests[socks]==2.34.2 ; python_version >= '3.9'\n")
    report = check_files([top], DATA)
    assert {p.name for p in report.pins} == {"jinja2", "requests"}
    assert any(f.pin.name == "jinja2" for f in report.findings)
    assert normalize("Ruamel_Yaml.clib") == "ruamel-yaml-clib"


def test_an_unpinned_requirement_fails_the_check(tmp_path):
    report = check_files([write(tmp_path, "boto3\nmlflow>=3\n")], DATA)
    assert len(report.unpinned) == 2 and not report.ok


# ---- OSV semantics, on synthetic advisories ----------------------------------------------------


def advisory(*, ranges=(), versions=(), withdrawn=None, name="demo-pkg") -> dict:
    data = {
        "id": "DEMO-1",
        "affected": [
            {
                "package": {"name": name, "ecosystem": "PyPI"},
                "ranges": [{"type": "ECOSYSTEM", "events": list(r)} for r in ranges],
                "versions": list(versions),
            }
        ],
    }
    if withdrawn:
        data["withdrawn"] = withdrawn
    return data


@pytest.mark.parametrize(
    "version,hit",
    [("0.9", False), ("1.0", True), ("1.4.9", True), ("1.5", False), ("2.0", True), ("2.1", True), ("2.2", False)],
)
def test_ranges_introduced_fixed_and_last_affected(version, hit):
    demo = advisory(
        ranges=[[{"introduced": "1.0"}, {"fixed": "1.5"}], [{"introduced": "2.0"}, {"last_affected": "2.1"}]]
    )
    assert affects(demo, "demo-pkg", version)[0] is hit


def test_explicit_versions_and_package_names():
    demo = advisory(versions=["0.3"], name="Demo_Pkg")
    assert affects(demo, "demo-pkg", "0.3")[0] and not affects(demo, "demo-pkg", "0.4")[0]
    assert not affects(demo, "other", "0.3")[0]


def test_withdrawn_advisories_are_skipped(tmp_path):
    folder = tmp_path / "pypa" / "demo-pkg"
    folder.mkdir(parents=True)
    import yaml

    (folder / "DEMO-1.yaml").write_text(
        yaml.safe_dump(advisory(ranges=[[{"introduced": "0"}]], withdrawn="2024-01-01"))
    )
    (folder / "DEMO-2.yaml").write_text(
        yaml.safe_dump({**advisory(ranges=[[{"introduced": "0"}, {"fixed": "2"}]]), "id": "DEMO-2"})
    )
    report = check_pins([Pin("demo-pkg", "1.0", "x:1")], tmp_path)
    assert [f.advisory for f in report.findings] == ["DEMO-2"]


# ---- the CLI ------------------------------------------------------------------------------------


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tools.advisories", *args], cwd=REPO_ROOT, capture_output=True, text=True
    )


def test_cli_passes_on_the_image_lock():
    result = cli("images/mlflow/requirements.txt")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 vulnerable, 0 not pinned, 1 to confirm by hand" in result.stdout
    assert "MANUAL" in result.stdout and "CVE-2026-64849" in result.stdout


def test_cli_fails_on_a_vulnerable_pin(tmp_path):
    result = cli(str(write(tmp_path, "werkzeug==2.2.2\n")))
    assert result.returncode == 1
    assert "VULNERABLE werkzeug==2.2.2" in result.stdout and "PYSEC-2023-58" in result.stdout


def test_cli_reports_missing_data(tmp_path):
    result = cli("requirements.txt", "--advisories", str(tmp_path))
    assert result.returncode == 2 and "no advisory database" in result.stderr
