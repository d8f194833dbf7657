"""The declaration spec (components/specs/access.py) and what the server spec does with `auth.*`."""

from __future__ import annotations

import json

import pytest

from components.config import parse_settings
from components.specs.access import promoter_roles, render_declaration
from components.specs.endpoints import ArtifactEndpoint, DatabaseEndpoint, JobQueueEndpoint
from components.specs.mlflow_server import mlflow_server_spec
from images.mlflow import server_contract as contract


def access(users: dict, **extra):
    raw = {"target": "docker", "tracking": {"workspaces": True}, "auth": {"mode": "mlflow", "users": users, **extra}}
    return parse_settings(raw)


def test_the_declaration_names_every_role_and_user_with_mlflows_types():
    settings = access(
        {"gina": {"roles": ["governance"], "experiments": {"3": "DENY"}, "workspaces": {"team-a": "MANAGE"}}}
    )
    document = json.loads(render_declaration(settings.auth, {"gina": "pw-gina"}))
    assert document["version"] == contract.AUTH_DECLARATION_VERSION
    assert document["roles"]["governance"] == {
        "default": [["experiment", "*", "READ"], ["registered_model", "*", "MANAGE"], ["prompt", "*", "READ"]]
    }
    assert document["users"] == {
        "gina": {
            "password": "pw-gina",
            "roles": ["governance"],
            "grants": {"default": [["experiment", "3", "DENY"]], "team-a": [["workspace", "*", "MANAGE"]]},
        }
    }


def test_the_declaration_is_stable_and_needs_every_password():
    settings = access({"b": {}, "a": {}})
    text = render_declaration(settings.auth, {"a": "x", "b": "y"})
    assert text == render_declaration(settings.auth, {"b": "y", "a": "x"})  # no diff between `up`s
    with pytest.raises(ValueError, match=r"no password for declared users \['b'\]"):
        render_declaration(settings.auth, {"a": "x"})


def test_promoters_are_the_roles_with_promote():
    assert promoter_roles(access({}).auth) == ("governance",)
    custom = access({}, roles={"ds": {}, "board": {"promote": True}, "risk": {"promote": True}})
    assert promoter_roles(custom.auth) == ("board", "risk")


DB = DatabaseEndpoint(host="db", port=5432, name="mlflow", user="mlflow_server", sslmode="disable")
# The shared job queue every spec with tracking.jobExecution (the default) needs.
QUEUE = JobQueueEndpoint("redis", 6379)
ARTIFACTS = ArtifactEndpoint(bucket="mlflow")


def test_the_server_gets_the_declaration_as_a_secret_and_the_promoters_as_plain_env():
    settings = access({"alice": {}}, defaultPermission="READ")
    spec = mlflow_server_spec(
        settings.tracking, DB, ARTIFACTS, app_name=contract.BASIC_AUTH_APP, access=settings.auth, job_queue=QUEUE
    )
    assert contract.AUTH_DECLARATION in spec.secret_env
    assert contract.AUTH_DECLARATION not in spec.env
    assert spec.env[contract.PROMOTER_ROLES] == "governance"
    assert spec.env["MLFLOW_BOOT_AUTH_DEFAULT_PERMISSION"] == "READ"
    plain = mlflow_server_spec(settings.tracking, DB, ARTIFACTS, app_name=contract.BASIC_AUTH_APP, job_queue=QUEUE)
    assert contract.AUTH_DECLARATION not in plain.secret_env and contract.PROMOTER_ROLES not in plain.env
    with pytest.raises(ValueError, match="users and roles need app_name='basic-auth'"):
        mlflow_server_spec(settings.tracking, DB, ARTIFACTS, access=settings.auth, job_queue=QUEUE)
