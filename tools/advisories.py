"""Offline known-vulnerability check of pinned Python requirements.

pip-audit needs a vulnerability service these machines cannot reach (it then reports
"No known vulnerabilities found" for packages it never checked), so this checks every
`name==version` pin against a local copy of the PyPA advisory database (OSV YAML) and
the MLflow advisories published after that snapshot (../shared/advisories/, see its README).

    python -m tools.advisories images/mlflow/requirements.txt [more files] [--advisories DIR]

Exit status: 0 clean, 1 a pin is vulnerable (or a line is not pinned), 2 bad usage/data.
Advisories that name no fixed release ("fix: mlflow PR N") are printed as needing manual
confirmation and do not fail the run.
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import yaml
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_ADVISORIES = REPO_ROOT.parent / "shared" / "advisories"
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(\[[^\]]*\])?\s*==\s*([^\s;#]+)")


def normalize(name: str) -> str:
    """PEP 503: case-insensitive, runs of -_. are one '-'."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class Pin:
    name: str  # normalized
    version: str
    source: str  # file:line


@dataclass(frozen=True)
class Finding:
    pin: Pin
    advisory: str
    aliases: tuple[str, ...]
    fixed: tuple[str, ...]
    summary: str

    def __str__(self) -> str:
        fix = f"fixed in {', '.join(self.fixed)}" if self.fixed else "no fixed release listed"
        also = f" ({', '.join(self.aliases)})" if self.aliases else ""
        return f"{self.pin.name}=={self.pin.version} [{self.pin.source}]: {self.advisory}{also}, {fix}: {self.summary}"


@dataclass
class Report:
    pins: list[Pin] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)
    unpinned: list[str] = field(default_factory=list)
    manual: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.findings and not self.unpinned


def read_pins(path: Path, _seen: set[Path] | None = None) -> tuple[list[Pin], list[str]]:
    """`name==version` pins of a requirements file, following `-r` includes; and the lines that pin nothing."""
    seen = _seen if _seen is not None else set()
    path = path.resolve()
    if path in seen:
        return [], []
    seen.add(path)
    pins: list[Pin] = []
    unpinned: list[str] = []
    for number, raw in enumerate(path.read_text().splitlines(), start=1):
        line = raw.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith(("-r ", "--requirement ")):
            more, loose = read_pins(path.parent / line.split(None, 1)[1], seen)
            pins += more
            unpinned += loose
            continue
        if line.startswith("-"):  # options such as --hash continuations or --index-url
            continue
        match = _PIN.match(line)
        if match:
            pins.append(Pin(normalize(match.group(1)), match.group(3), f"{path.name}:{number}"))
        else:
            unpinned.append(f"{path.name}:{number}: {line}")
    return pins, unpinned


def _version(text: str) -> Version | None:
    try:
        return Version(str(text))
    except InvalidVersion:
        return None


def _in_range(version: Version, events: list[dict]) -> bool:
    """OSV ECOSYSTEM semantics: [introduced, fixed) or [introduced, last_affected]; `limit` ignored (git only)."""
    ordered = []
    for event in events:
        kind, value = next(iter(event.items()))
        if kind not in ("introduced", "fixed", "last_affected"):
            continue
        parsed = Version("0") if str(value) == "0" else _version(value)
        if parsed is None:
            continue
        ordered.append((parsed, 0 if kind == "introduced" else 1, kind))
    ordered.sort(key=lambda item: (item[0], item[1]))
    start: Version | None = None
    for parsed, _, kind in ordered:
        if kind == "introduced":
            start = parsed if start is None else start
        elif start is not None:
            if start <= version and (version < parsed if kind == "fixed" else version <= parsed):
                return True
            start = None
    return start is not None and version >= start


def affects(advisory: dict, name: str, version: str) -> tuple[bool, tuple[str, ...]]:
    """Whether an OSV advisory covers `name==version`, and the fixed releases it names for it."""
    parsed = _version(version)
    hit, fixed = False, []
    for entry in advisory.get("affected", []):
        package = entry.get("package", {})
        if package.get("ecosystem") != "PyPI" or normalize(package.get("name", "")) != name:
            continue
        listed = [str(v) for v in entry.get("versions", [])]
        if version in listed or (parsed is not None and any(_version(v) == parsed for v in listed)):
            hit = True
        for rng in entry.get("ranges", []):
            if rng.get("type") != "ECOSYSTEM":
                continue
            fixed += [str(e["fixed"]) for e in rng.get("events", []) if "fixed" in e]
            if parsed is not None and _in_range(parsed, rng.get("events", [])):
                hit = True
    return hit, tuple(dict.fromkeys(fixed))


@lru_cache(maxsize=8)
def _package_dirs(pypa: Path) -> dict[str, Path]:
    return {normalize(p.name): p for p in pypa.iterdir() if p.is_dir()}


@lru_cache(maxsize=4096)
def _advisories_of(pypa: Path, name: str) -> tuple[dict, ...]:
    folder = _package_dirs(pypa).get(name)
    if folder is None:
        return ()
    loaded = [yaml.load(p.read_text(), Loader=_LOADER) for p in sorted(folder.glob("*.yaml"))]
    return tuple(a for a in loaded if isinstance(a, dict) and not a.get("withdrawn"))


def load_mlflow_later(path: Path) -> list[dict]:
    return yaml.load(path.read_text(), Loader=_LOADER) or []


def mlflow_later_findings(pin: Pin, entries: list[dict]) -> tuple[list[Finding], list[str]]:
    """mlflow-later.yaml: `fixed` (need >=), `affected` (a specifier), or only `fix` (manual)."""
    findings, manual = [], []
    version = Version(pin.version)
    for entry in entries:
        ident = str(entry.get("id"))
        aliases = tuple(str(a) for a in [entry.get("alias")] if a)
        summary = str(entry.get("summary", ""))
        if "fixed" in entry:
            if version < Version(str(entry["fixed"])):
                findings.append(Finding(pin, ident, aliases, (str(entry["fixed"]),), summary))
        elif "affected" in entry:
            try:
                spec = SpecifierSet(str(entry["affected"]))
            except InvalidSpecifier as exc:
                raise ValueError(f"mlflow-later.yaml {ident}: bad 'affected' {entry['affected']!r}") from exc
            if spec.contains(version, prereleases=True):
                findings.append(Finding(pin, ident, aliases, (), f"{summary} (affected {entry['affected']})"))
        else:
            manual.append(
                f"{pin.name}=={pin.version}: {ident}{' (' + ', '.join(aliases) + ')' if aliases else ''} "
                f"names no fixed release ({entry.get('fix', 'no fix given')}): confirm by hand that "
                f"{pin.version} contains the fix"
            )
    return findings, manual


def check_pins(pins: list[Pin], advisories: Path = DEFAULT_ADVISORIES) -> Report:
    pypa = advisories / "pypa"
    if not pypa.is_dir():
        raise FileNotFoundError(f"no advisory database at {pypa} (see ../shared/advisories/README.md)")
    report = Report(pins=list(pins))
    later = load_mlflow_later(advisories / "mlflow-later.yaml") if (advisories / "mlflow-later.yaml").exists() else []
    for pin in pins:
        for advisory in _advisories_of(pypa, pin.name):
            hit, fixed = affects(advisory, pin.name, pin.version)
            if hit:
                summary = str(advisory.get("summary") or advisory.get("details", "")).split("\n")[0][:160]
                report.findings.append(
                    Finding(pin, str(advisory.get("id")), tuple(advisory.get("aliases", [])), fixed, summary)
                )
        if pin.name == "mlflow":
            findings, manual = mlflow_later_findings(pin, later)
            report.findings += findings
            report.manual += manual
    return report


def check_files(paths: list[Path], advisories: Path = DEFAULT_ADVISORIES) -> Report:
    pins, unpinned = [], []
    for path in paths:
        more, loose = read_pins(path)
        pins += more
        unpinned += loose
    report = check_pins(list(dict.fromkeys(pins)), advisories)
    report.unpinned = unpinned
    return report


def minimum_safe_mlflow(advisories: Path = DEFAULT_ADVISORIES) -> Version:
    """The highest first-fixed MLflow release across pypa/mlflow and mlflow-later.yaml."""
    fixed = [Version(str(e["fixed"])) for e in load_mlflow_later(advisories / "mlflow-later.yaml") if "fixed" in e]
    for advisory in _advisories_of(advisories / "pypa", "mlflow"):
        for entry in advisory.get("affected", []):
            for rng in entry.get("ranges", []):
                if rng.get("type") == "ECOSYSTEM":
                    fixed += [v for e in rng.get("events", []) if "fixed" in e and (v := _version(e["fixed"]))]
    return max(fixed)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.advisories", description=__doc__.split("\n\n")[0])
    parser.add_argument("requirements", nargs="+", type=Path)
    parser.add_argument(
        "--advisories",
        type=Path,
        default=DEFAULT_ADVISORIES,
        help=f"advisory data directory (default {DEFAULT_ADVISORIES})",
    )
    args = parser.parse_args(argv)
    try:
        report = check_files(args.requirements, args.advisories)
    except (OSError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for line in report.unpinned:
        print(f"NOT PINNED {line}")
    for finding in report.findings:
        print(f"VULNERABLE {finding}")
    for line in report.manual:
        print(f"MANUAL     {line}")
    print(
        f"{len(report.pins)} pins checked against {args.advisories}: {len(report.findings)} vulnerable, "
        f"{len(report.unpinned)} not pinned, {len(report.manual)} to confirm by hand"
    )
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
