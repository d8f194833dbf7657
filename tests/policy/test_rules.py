"""Each rule: its passing fixture raises nothing, its failing fixture raises exactly the expected violations.

Both through the pure rule function and through pulumi-policy's analyzer (what the CLI calls),
so the pack's wrapping and pulumi-policy's deserialization are covered for every rule.
"""

from __future__ import annotations

import pytest
from rules import ALL_RULES, UNKNOWN, Res

from tests.policy.fixtures import CASES, res, with_props
from tests.policy.harness import analyze, evaluate, rules_by_id

RULES = rules_by_id()


def test_every_rule_has_a_passing_and_a_failing_fixture():
    assert set(CASES) == set(RULES)


@pytest.mark.parametrize("rule_id", sorted(CASES))
def test_passing_fixture_raises_nothing(rule_id):
    assert evaluate(RULES[rule_id], CASES[rule_id].good) == []


@pytest.mark.parametrize("rule_id", sorted(CASES))
def test_failing_fixture_raises_exactly_the_violations(rule_id):
    assert sorted(evaluate(RULES[rule_id], CASES[rule_id].bad)) == sorted(CASES[rule_id].violations)


@pytest.mark.parametrize("rule_id", sorted(CASES))
def test_the_served_pack_reports_the_same(rule_id):
    """pulumi-policy's analyzer, prod enforcement: the rule's violations are mandatory, prefixed by its description."""
    case, rule = CASES[rule_id], RULES[rule_id]
    names = {r.urn: r.name for r in case.bad}
    reported = [(names.get(d.urn, d.urn), d.message) for d in analyze(case.bad, "prod") if d.policy == rule_id]
    assert sorted(reported) == sorted((name, f"{rule.description}\n{message}") for name, message in case.violations)
    assert all(d.level == "mandatory" for d in analyze(case.bad, "prod") if d.policy == rule_id)
    assert [d for d in analyze(case.good, "prod") if d.policy == rule_id] == []


def test_every_rule_cites_a_control():
    for rule in ALL_RULES:
        assert rule.controls and all(rule.controls), rule.id
        assert rule.description.endswith(f"[{', '.join(rule.controls)}]")


# ---- values unknown during preview are not violations -------------------------------------------


def _unknown_everywhere(r: Res) -> Res:
    return with_props(r, **{key: UNKNOWN for key in r.props})


@pytest.mark.parametrize("rule_id", sorted(CASES))
def test_unknown_values_never_crash_or_violate(rule_id):
    """Every input of every failing fixture replaced by UNKNOWN: the rule reports nothing it cannot see."""
    rule = RULES[rule_id]
    unknown = [_unknown_everywhere(r) for r in CASES[rule_id].bad]
    violations = evaluate(rule, unknown)
    # Only "X has no companion resource" may remain: a missing resource is known even in a preview.
    assert all("has no" in message or "not managed" in message for _, message in violations), violations


def test_unknown_sentinels_over_the_wire_do_not_crash_the_served_pack():
    from pulumi_policy.proxy import UNKNOWN_BOOLEAN_VALUE, UNKNOWN_NUMBER_VALUE, UNKNOWN_STRING_VALUE

    db = res(
        "aws:rds/instance:Instance",
        "db",
        {
            "engine": "postgres",
            "storageEncrypted": UNKNOWN_BOOLEAN_VALUE,
            "publiclyAccessible": True,
            "backupRetentionPeriod": UNKNOWN_NUMBER_VALUE,
            "deletionProtection": True,
            "multiAz": True,
            "finalSnapshotIdentifier": UNKNOWN_STRING_VALUE,
            "enabledCloudwatchLogsExports": ["postgresql"],
            "parameterGroupName": UNKNOWN_STRING_VALUE,
            "monitoringInterval": UNKNOWN_NUMBER_VALUE,
            "iamDatabaseAuthenticationEnabled": UNKNOWN_BOOLEAN_VALUE,
            "manageMasterUserPassword": UNKNOWN_BOOLEAN_VALUE,
        },
    )
    task = res("aws:ecs/taskDefinition:TaskDefinition", "task", {"containerDefinitions": UNKNOWN_STRING_VALUE})
    # The plan that protects it (rds-in-backup-plan), its instance's ARN not known yet.
    selection = res("aws:backup/selection:Selection", "backup", {"resources": [UNKNOWN_STRING_VALUE]},
                    deps={"resources": [db]})  # fmt: skip
    diagnostics = analyze([db, task, selection], "prod")
    # Only what is known is judged: the instance is public; nothing else is reported.
    assert [(d.policy, d.level, d.message.split("\n")[1]) for d in diagnostics] == [
        ("rds-not-public", "mandatory", "publiclyAccessible must be false")
    ]
