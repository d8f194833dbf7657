"""The rule table of docs/policy.md, generated from the policy pack's rules (id, kind, controls,
whether the dev stack enforces it, summary), so a new rule cannot be missing from the docs:

    python -m tools.policy_reference           # rewrite the table in place
    python -m tools.policy_reference --check   # exit 1 when it is out of date
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tools.generated_blocks import replace_block, write_or_check

REPO_ROOT = Path(__file__).resolve().parent.parent
DOC = REPO_ROOT / "docs" / "policy.md"
TOOL = "python -m tools.policy_reference"
BLOCK = "policy rules"
# The pack runs as its own program (`python policy/`), importing its rules as top-level `rules`.
sys.path.insert(0, str(REPO_ROOT / "policy"))

from rules import ALL_RULES  # noqa: E402


def rows() -> list[str]:
    lines = [
        f"{len(ALL_RULES)} rules.",
        "",
        "| # | Rule | Kind | Controls | Dev stack | What it checks |",
        "|---|------|------|----------|-----------|----------------|",
    ]
    for number, rule in enumerate(ALL_RULES, start=1):
        dev = "yes" if rule.dev else "**no**"
        summary = rule.summary.replace("|", "\\|")
        lines.append(f"| {number} | `{rule.id}` | {rule.kind} | {', '.join(rule.controls)} | {dev} | {summary} |")
    return lines


def generated() -> dict[Path, str]:
    return {DOC: replace_block(DOC.read_text(), BLOCK, TOOL, rows(), "docs/policy.md")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="fail when the table differs from the rules")
    args = parser.parse_args(argv)
    return write_or_check(generated(), check=args.check, tool="tools.policy_reference", root=REPO_ROOT)


if __name__ == "__main__":
    sys.exit(main())
