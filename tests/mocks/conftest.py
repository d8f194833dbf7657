"""Shared fixtures of the whole-program tests: each stack's program, run once."""

from __future__ import annotations

import pytest

from tests.pulumi_mocks import run_program, stack_config


@pytest.fixture(scope="session")
def dev_run():
    """Pulumi.dev.yaml as committed, for every Docker stack test file."""
    return run_program(stack_config("dev"), stack="dev")


@pytest.fixture(scope="session")
def prod_run():
    """Pulumi.prod.yaml as committed, for every prod stack test file (tests/mocks/prod_helpers.py)."""
    from tests.mocks.prod_helpers import run_prod

    return run_prod()
