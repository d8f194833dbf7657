"""Every PostgreSQL of the platform is as durable as the others: the end-to-end kit's, the dev
stack's container and RDS (components/specs/durability.py), and the policy pack guards RDS."""

from __future__ import annotations

from components.specs.durability import DURABLE_SETTINGS, RDS_SETTABLE, weakened
from testkit.postgres import LocalPostgres
from tests.mocks.docker_finders import POSTGRES, containers
from tests.policy import harness  # noqa: F401  (policy/ on sys.path: the pack's `rules`)

EXPECTED = {"fsync": "on", "synchronous_commit": "on", "full_page_writes": "on"}


def _c_flags(command: list[str]) -> dict[str, str]:
    """name -> value of each `-c name=value` of a postgres command line."""
    return dict(command[i + 1].split("=", 1) for i, arg in enumerate(command) if arg == "-c")


def test_the_settings_are_the_durable_ones():
    assert dict(DURABLE_SETTINGS) == EXPECTED
    assert weakened(EXPECTED) == [] and weakened({}) == []
    assert weakened({"fsync": "off", "synchronous_commit": "local", "full_page_writes": "1"}) == [
        "fsync",
        "synchronous_commit",
    ]


def test_the_kit_runs_them():
    kit = LocalPostgres()  # not started: the settings are fixed at construction
    assert {name: kit.settings[name] for name in EXPECTED} == EXPECTED


def test_the_dev_container_runs_them(dev_run):
    command = containers(dev_run)[POSTGRES].inputs["command"]
    flags = _c_flags(command)
    assert {name: flags[name] for name in EXPECTED} == EXPECTED


def test_rds_states_what_a_group_can_weaken_and_weakens_nothing(prod_run):
    group = prod_run.one("aws:rds/parameterGroup:ParameterGroup").plain
    params = {p["name"]: p["value"] for p in group["parameters"]}
    assert {name: params[name] for name in RDS_SETTABLE} == {"synchronous_commit": "on"}
    # fsync and full_page_writes cannot be set on RDS (fixed on): a group naming them fails to create.
    assert not {"fsync", "full_page_writes"} & set(params)
    assert weakened(params) == []
    # Dynamic: applied at once, no reboot.
    (sync,) = [p for p in group["parameters"] if p["name"] == "synchronous_commit"]
    assert sync.get("applyMethod", "immediate") == "immediate"


def test_the_policy_rule_covers_the_same_settings():
    from rules.aws_rds import DURABILITY_PARAMETERS

    assert set(DURABILITY_PARAMETERS) == set(DURABLE_SETTINGS)
    for name, value in DURABLE_SETTINGS.items():
        assert value in DURABILITY_PARAMETERS[name]
