"""The committed prod config (Pulumi.prod.yaml): what it targets, that it reaches the server's
command as written, and that an invalid one stops the program before anything is registered.
"""

from __future__ import annotations

import json
import re

import pytest

from components.config import ConfigError
from tests.mocks.prod_helpers import PROD, container, prod_section, run_prod


def test_committed_prod_config_targets_aws_and_disables_default_providers():
    assert PROD["mlflow-platform:target"] == "aws"
    assert json.loads(PROD["pulumi:disable-default-providers"]) == ["*"]


def test_invalid_config_fails_before_any_resource_is_registered():
    db = {**prod_section("database"), "publiclyAccessible": True}
    with pytest.raises(ConfigError) as error:
        run_prod(database=db)
    assert "database.publiclyAccessible" in dict(error.value.problems)


def test_prod_command_values_come_from_the_committed_config(prod_run):
    """Literal values of Pulumi.prod.yaml, not the program's own spec function."""
    command = container(prod_run)["command"]

    def value(flag: str) -> str:
        return command[command.index(flag) + 1]

    tracking, balancer = prod_section("tracking"), prod_section("loadBalancer")
    # Then the address MLflow points its job processes at (mlflow server --host/--port).
    assert value("--allowed-hosts") == ",".join([*tracking["allowedHosts"], "0.0.0.0:5000"])
    assert tracking["allowedHosts"] == ["mlflow.example.com"]
    assert value("--workers") == str(tracking["workers"])
    assert value("--app-name") == "basic-auth"
    assert value("--default-artifact-root") == "mlflow-artifacts:/"
    # uvicorn must keep idle connections longer than the ALB (3600 s), or reused ones get 502s.
    assert f"--timeout-keep-alive {balancer['idleTimeoutSeconds'] + 15}" in value("--uvicorn-opts")
    assert re.fullmatch(r"s3://mlflow-prod-artifacts-[0-9a-z-]+/", value("--artifacts-destination"))
