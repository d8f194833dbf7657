"""The GitHub workflows and Dependabot config: zizmor (offline) finds nothing, every action is pinned
to a commit SHA, each job has the least permissions it needs, and the AWS credentials outlive the job."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.static.conftest import tool

ROOT = Path(__file__).resolve().parents[2]
GITHUB = ROOT / ".github"
WORKFLOWS_DIR = GITHUB / "workflows"
WORKFLOWS = sorted(WORKFLOWS_DIR.glob("*.yml")) + sorted(WORKFLOWS_DIR.glob("*.yaml"))
DEPENDABOT = GITHUB / "dependabot.yml"
# Accepted findings, each with its reason, would live here (none today).
ZIZMOR_CONFIG = ROOT / "zizmor.yml"

AWS_CREDENTIALS = "aws-actions/configure-aws-credentials"
CHECKOUT = "actions/checkout"
# owner/repo[/path]@<40 hex> # vX[.Y[.Z]]
PINNED_USES = re.compile(
    r"^\s*(?:-\s+)?uses:\s+"
    r"(?P<action>[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+(?:/[^@\s]+)?)@(?P<sha>[0-9a-f]{40})"
    r"\s+#\s*(?P<tag>v\d+(?:\.\d+){0,2})\s*$"
)
# GitHub's default when a job sets no timeout-minutes.
DEFAULT_TIMEOUT_MINUTES = 360


def test_there_are_workflows():
    assert {p.name for p in WORKFLOWS} >= {"deploy.yml", "preview.yml"}


# --- zizmor ---------------------------------------------------------------------------------------


def zizmor(*inputs: Path) -> subprocess.CompletedProcess:
    config = ["--config", str(ZIZMOR_CONFIG)] if ZIZMOR_CONFIG.exists() else ["--no-config"]
    env = {k: v for k, v in os.environ.items() if k not in {"GH_TOKEN", "GITHUB_TOKEN", "ZIZMOR_GITHUB_TOKEN"}}
    return subprocess.run(
        [tool("zizmor"), "--offline", "--strict-collection", "--no-progress", "--color=never",
         "--format=json", *config, *(str(i.relative_to(ROOT) if i.is_relative_to(ROOT) else i) for i in inputs)],
        capture_output=True, text=True, cwd=ROOT, env=env, timeout=120,
    )  # fmt: skip


def findings_of(result: subprocess.CompletedProcess) -> list[dict]:
    # 0: no findings; 10-14: findings (by highest severity); anything else: zizmor itself failed.
    if result.returncode not in (0, 10, 11, 12, 13, 14):
        pytest.fail(f"zizmor failed (exit {result.returncode}):\n{result.stderr}")
    try:
        findings = json.loads(result.stdout)
    except json.JSONDecodeError:
        pytest.fail(f"zizmor printed no JSON (exit {result.returncode}):\n{result.stdout}\n{result.stderr}")
    return [f for f in findings if not f.get("ignored")]


def describe(finding: dict) -> str:
    where = []
    for location in finding.get("locations", []):
        if location.get("symbolic", {}).get("kind") != "Primary":
            continue
        path = location["symbolic"]["key"].get("Local", {}).get("verbatim_path", "?")
        point = location["concrete"]["location"]["start_point"]
        where.append(
            f"{path}:{point['row'] + 1}:{point['column'] + 1}: {location['symbolic'].get('annotation', '')}"
            f" [{location['concrete'].get('feature', '').strip()}]"
        )
    det = finding.get("determinations", {})
    head = f"{finding['ident']} ({det.get('severity')}, confidence {det.get('confidence')}): {finding['desc']}"
    return "\n".join([head, *(f"    {w}" for w in where), f"    {finding.get('url', '')}"])


def test_zizmor_offline_finds_nothing_in_the_workflows_or_dependabot_config():
    result = zizmor(WORKFLOWS_DIR, DEPENDABOT)
    findings = findings_of(result)
    if findings:
        pytest.fail(
            f"zizmor: {len(findings)} finding(s). Fix them, or suppress an accepted one in zizmor.yml "
            "with its reason:\n\n" + "\n\n".join(map(describe, findings))
        )
    assert result.returncode == 0, result.stderr


def test_zizmor_does_flag_an_unpinned_action(tmp_path):
    """The check above is live: offline, zizmor still sees a tag-pinned action."""
    workflows = tmp_path / ".github" / "workflows"
    workflows.mkdir(parents=True)
    (workflows / "bad.yml").write_text(
        "on: push\npermissions: {}\njobs:\n  j:\n    runs-on: ubuntu-24.04\n    steps:\n"
        "      - uses: actions/checkout@v4\n        with:\n          persist-credentials: false\n"
    )
    assert "unpinned-uses" in {f["ident"] for f in findings_of(zizmor(workflows))}


# --- the workflows, parsed --------------------------------------------------------------------------


def load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def jobs() -> list[tuple[str, str, dict]]:
    """(workflow file, job id, job) for every job of every workflow."""
    return [(p.name, job_id, job) for p in WORKFLOWS for job_id, job in (load(p).get("jobs") or {}).items()]


def steps(job: dict) -> list[dict]:
    return job.get("steps") or []


def uses(step: dict, action: str) -> bool:
    return str(step.get("uses", "")).split("@")[0] == action


def uses_nodes(node: yaml.Node):
    """Every `uses:` value node in a composed workflow (steps' and reusable-workflow jobs')."""
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            if isinstance(key, yaml.ScalarNode) and key.value == "uses":
                yield value
            else:
                yield from uses_nodes(value)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            yield from uses_nodes(item)


def all_uses() -> list[tuple[str, int, str, str]]:
    """(file, line number, value, the raw line) of every `uses:`."""
    found = []
    for path in WORKFLOWS:
        text = path.read_text()
        lines = text.splitlines()
        for node in uses_nodes(yaml.compose(text)):
            line = node.start_mark.line
            found.append((path.name, line + 1, node.value, lines[line]))
    return found


@pytest.mark.parametrize("line", [
    "      - uses: actions/checkout@11d5960a326750d5838078e36cf38b85af677262 # v4.4.0",
    "        uses: github/codeql-action/init@0123456789abcdef0123456789abcdef01234567  # v3",
])  # fmt: skip
def test_the_pin_pattern_accepts_sha_pins(line):
    assert PINNED_USES.match(line)


@pytest.mark.parametrize("line", [
    "      - uses: actions/checkout@v4",
    "      - uses: actions/checkout@11d5960a326750d5838078e36cf38b85af677262",
    "      - uses: actions/checkout@11d5960a326750d5838078e36cf38b85af67726 # v4.4.0",
    "      - uses: actions/checkout@11D5960A326750D5838078E36CF38B85AF677262 # v4.4.0",
    "      - uses: actions/checkout@main # v4.4.0",
    "      - uses: ./local-action",
    "      - uses: docker://alpine:3",
])  # fmt: skip
def test_the_pin_pattern_refuses_anything_else(line):
    assert not PINNED_USES.match(line)


def test_every_uses_is_pinned_to_a_commit_sha_with_its_tag_in_a_comment():
    found = all_uses()
    assert found, "no `uses:` found: is the YAML walk broken?"
    bad = [
        f"{name}:{number}: {raw.strip()}"
        for name, number, value, raw in found
        if not (m := PINNED_USES.match(raw)) or f"{m['action']}@{m['sha']}" != value
    ]
    assert not bad, "not `owner/repo@<40-hex sha> # vX`:\n" + "\n".join(bad)


def test_each_action_is_pinned_to_one_sha_and_tag_across_the_workflows():
    pins: dict[str, set[tuple[str, str]]] = {}
    for _, _, _, raw in all_uses():
        if m := PINNED_USES.match(raw):
            pins.setdefault(m["action"], set()).add((m["sha"], m["tag"]))
    assert {action: pin for action, pin in pins.items() if len(pin) > 1} == {}


def test_every_checkout_does_not_persist_credentials():
    checkouts = [(name, job_id, step) for name, job_id, job in jobs() for step in steps(job) if uses(step, CHECKOUT)]
    assert checkouts
    bad = [
        f"{name} {job_id}"
        for name, job_id, step in checkouts
        if (step.get("with") or {}).get("persist-credentials") is not False
    ]
    assert not bad, "actions/checkout without `persist-credentials: false`: " + ", ".join(bad)


# --- permissions ------------------------------------------------------------------------------------


def test_workflows_grant_nothing_by_default_and_every_job_asks_for_its_own():
    for path in WORKFLOWS:
        assert load(path).get("permissions") == {}, f"{path.name}: top-level permissions must be {{}}"
    for name, job_id, job in jobs():
        assert isinstance(job.get("permissions"), dict), f"{name} {job_id}: no explicit permissions mapping"


def test_no_job_grants_write_beyond_what_it_uses():
    allowed_writes = {"id-token", "pull-requests"}  # each checked below
    for name, job_id, job in jobs():
        perms = job["permissions"]
        extra = {scope for scope, level in perms.items() if level == "write"} - allowed_writes
        assert not extra, f"{name} {job_id}: unexpected write permissions {sorted(extra)}"
        assert set(perms.values()) <= {"read", "write", "none"}, f"{name} {job_id}: {perms}"


def test_id_token_write_only_in_jobs_that_assume_an_aws_role():
    for name, job_id, job in jobs():
        oidc = job["permissions"].get("id-token") == "write"
        assumes = any(uses(step, AWS_CREDENTIALS) for step in steps(job))
        assert oidc == assumes, (
            f"{name} {job_id}: id-token: write {'without' if oidc else 'missing for'} {AWS_CREDENTIALS}"
        )


def test_pull_requests_write_only_in_the_job_that_comments_the_preview():
    writers = {(name, job_id) for name, job_id, job in jobs() if job["permissions"].get("pull-requests") == "write"}
    commenters = {
        (name, job_id)
        for name, job_id, job in jobs()
        if any((step.get("with") or {}).get("comment-on-pr") is True for step in steps(job))
    }
    assert writers == commenters == {("preview.yml", "preview")}


# --- how long a job may run with its AWS credentials ----------------------------------------------


def aws_duration_seconds(job: dict) -> int:
    (step,) = [s for s in steps(job) if uses(s, AWS_CREDENTIALS)]
    return int(step["with"]["role-duration-seconds"])


def test_aws_credentials_outlive_every_job_that_assumes_a_role():
    checked = 0
    for name, job_id, job in jobs():
        if not any(uses(step, AWS_CREDENTIALS) for step in steps(job)):
            continue
        timeout = int(job.get("timeout-minutes", DEFAULT_TIMEOUT_MINUTES))
        assert aws_duration_seconds(job) >= timeout * 60, (
            f"{name} {job_id}: role-duration-seconds {aws_duration_seconds(job)} < timeout-minutes {timeout} * 60"
        )
        checked += 1
    assert checked == 2  # deploy's up, preview's preview


def test_deploy_up_covers_a_first_multi_az_rds_deploy_image_build_and_an_hour_of_ecs_draining():
    up = load(WORKFLOWS_DIR / "deploy.yml")["jobs"]["up"]
    timeout = int(up["timeout-minutes"])
    assert timeout >= 150
    assert aws_duration_seconds(up) >= timeout * 60
    # STS caps a web-identity session at 12 h (and at the role's MaxSessionDuration).
    assert aws_duration_seconds(up) <= 12 * 3600


# --- Dependabot -----------------------------------------------------------------------------------


def requirement_dirs() -> set[str]:
    """Every directory of the repo with a requirements file, as Dependabot names it ("/", "/policy")."""
    found = set()
    for here, dirs, files in os.walk(ROOT):
        dirs[:] = [
            d
            for d in dirs
            if not d.startswith(".")
            and d not in {"node_modules", "__pycache__"}
            and not (Path(here) / d / "pyvenv.cfg").exists()
        ]
        if any(re.fullmatch(r"requirements.*\.(txt|in)", f) for f in files):
            rel = Path(here).relative_to(ROOT).as_posix()
            found.add("/" if rel == "." else f"/{rel}")
    return found


def dependabot_updates() -> dict[str, list[dict]]:
    config = load(DEPENDABOT)
    assert config["version"] == 2
    by_ecosystem: dict[str, list[dict]] = {}
    for update in config["updates"]:
        by_ecosystem.setdefault(update["package-ecosystem"], []).append(update)
    return by_ecosystem


def directories(update: dict) -> set[str]:
    return set(update.get("directories") or [update["directory"]])


def test_dependabot_updates_actions_and_every_requirements_file_weekly_in_groups():
    updates = dependabot_updates()
    assert set(updates) == {"github-actions", "pip"}
    assert {d for u in updates["github-actions"] for d in directories(u)} == {"/"}
    assert requirement_dirs() >= {"/", "/policy", "/images/mlflow"}
    assert {d for u in updates["pip"] for d in directories(u)} == requirement_dirs()
    for update in (u for us in updates.values() for u in us):
        assert update["schedule"]["interval"] == "weekly"
        assert update.get("groups"), f"{update['package-ecosystem']}: ungrouped"
