"""A refactor replaces nothing: every resource of the baseline (what a stack has deployed) is
still registered, under its URN or an alias of it, with the same inputs and options.

The baselines are tests/mocks/baseline/<stack>.json. After an intended change of what is
deployed, regenerate them (`make snapshot`) and review their diff with the change.
"""

from __future__ import annotations

import json

import pytest

from tests.mocks.snapshot import STACKS, baseline_path, run_stack, snapshot


@pytest.mark.parametrize("stack", STACKS)
def test_every_deployed_resource_is_kept_with_the_same_inputs(stack):
    before = json.loads(baseline_path(stack).read_text())
    now = snapshot(run_stack(stack))
    # Each current resource answers for its own URN and for the URNs it is aliased from.
    answering = {}
    for urn, record in now.items():
        for old in {urn, *record["aliases"]}:
            assert old not in answering, f"{old} is claimed by two resources"
            answering[old] = urn

    def moved(urns: list[str]) -> list[str]:
        return sorted(answering.get(u, u) for u in urns)

    missing = sorted(urn for urn in before if urn not in answering)
    assert missing == [], f"resources that would be deleted (and replaced by new ones): {missing}"
    added = sorted(urn for urn in now if urn not in before and not set(now[urn]["aliases"]) & set(before))
    assert added == [], f"resources that would be created: {added} (intended? run `make snapshot`)"
    changed = {}
    for old_urn, old in before.items():
        current = dict(now[answering[old_urn]])
        current.pop("aliases")
        provider = old["provider"] and answering.get(old["provider"], old["provider"])
        expected = dict(
            old, dependencies=moved(old["dependencies"]), replace_with=moved(old["replace_with"]), provider=provider
        )
        if current != expected:
            changed[old_urn] = sorted(k for k in expected if expected[k] != current.get(k))
    assert changed == {}, f"resources whose inputs or options changed (intended? run `make snapshot`): {changed}"
