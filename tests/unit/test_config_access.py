"""auth.users / auth.roles / auth.defaultPermission on both targets, and auth.mode on Docker."""

from __future__ import annotations

import ast
import copy
import importlib.util
from pathlib import Path
from typing import get_args

import pytest

from components.config import ConfigError, DockerSettings, parse_settings
from components.config.access import DefaultLevel, ResourceLevel, WorkspaceLevel
from tests.unit.test_config_aws import GOOD


def problems(raw: dict) -> dict[str, str]:
    with pytest.raises(ConfigError) as caught:
        parse_settings(raw)
    return dict(caught.value.problems)


def _mlflow_auth_constants() -> dict[str, object]:
    """MLflow's permission sets, read from its permissions.py without importing the auth package
    (its __init__ reads the auth ini and builds the app)."""
    spec = importlib.util.find_spec("mlflow")
    assert spec and spec.submodule_search_locations
    source = Path(next(iter(spec.submodule_search_locations)), "server/auth/permissions.py").read_text()
    found: dict[str, object] = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name):
            name = node.targets[0].id
            if name in ("WORKSPACE_GRANTABLE_PERMISSIONS", "RESOURCE_GRANTABLE_PERMISSIONS"):
                call = node.value
                assert isinstance(call, ast.Call)
                found[name] = {e.value.id for e in call.args[0].elts}  # type: ignore[attr-defined]
    return found


def test_the_permission_names_are_mlflows_own():
    mlflow_sets = _mlflow_auth_constants()
    # READ/USE/EDIT/MANAGE/DENY: each a module constant whose name is its permission name.
    assert set(get_args(ResourceLevel)) == mlflow_sets["RESOURCE_GRANTABLE_PERMISSIONS"]
    assert set(get_args(WorkspaceLevel)) == mlflow_sets["WORKSPACE_GRANTABLE_PERMISSIONS"]
    assert set(get_args(DefaultLevel)) == {"NO_PERMISSIONS", "READ", "USE", "EDIT", "MANAGE"}


def test_default_is_the_proxy_mode_with_the_governance_layout_and_no_users():
    settings = parse_settings({"target": "docker"})
    assert isinstance(settings, DockerSettings)
    assert settings.auth.mode == "proxy"
    assert settings.auth.users == {}
    assert settings.auth.default_permission == "NO_PERMISSIONS"
    roles = settings.auth.roles
    assert [name for name, role in roles.items() if role.promote] == ["governance"]
    assert roles["data-scientist"].registered_models == {"*": "EDIT"}
    assert roles["governance"].registered_models == {"*": "MANAGE"}


def test_users_and_roles_are_parsed_from_camel_case_keys():
    settings = parse_settings(
        {
            "target": "docker",
            "tracking": {"workspaces": True},
            "auth": {
                "mode": "mlflow",
                "defaultPermission": "READ",
                "roles": {"reviewer": {"registeredModels": {"fraud": "READ"}, "promote": True}},
                "users": {
                    "alice": {"roles": ["reviewer"], "experiments": {"*": "EDIT", "12": "DENY"}},
                    "bob@example.com": {"prompts": {"*": "USE"}, "workspaces": {"team-a": "MANAGE"}},
                },
            },
        }
    )
    auth = settings.auth
    assert list(auth.roles) == ["reviewer"]  # an explicit layout replaces the default
    assert auth.users["alice"].experiments == {"*": "EDIT", "12": "DENY"}
    assert auth.users["bob@example.com"].workspaces == {"team-a": "MANAGE"}


def test_every_wrong_access_key_is_named_at_once():
    found = problems(
        {
            "target": "docker",
            "auth": {
                "users": {
                    "admin": {"roles": ["data-scientst"], "experiments": {"fraud": "READ"}, "workspaces": {"a": "USE"}}
                },
                "roles": {"mlflow-platform.user.x": {}, "data-scientist": {}},
            },
        }
    )
    assert found == {
        "auth.users": "needs auth.mode: mlflow (with 'proxy' nginx knows one user only)",
        "auth.users.admin": "is the admin user, which MLflow creates itself and the platform never touches",
        "auth.users.admin.experiments": "'fraud' is not an experiment id or '*'",
        "auth.users.admin.roles": "'data-scientst' is not in auth.roles; did you mean 'data-scientist'?",
        "auth.users.admin.workspaces": "needs tracking.workspaces: true",
        "auth.roles.mlflow-platform.user.x": "names starting with 'mlflow-platform.user.' are the platform's",
    }


def test_wrong_levels_and_names_are_refused_by_the_schema():
    found = problems(
        {
            "target": "docker",
            "auth": {
                "mode": "mlflow",
                "defaultPermission": "DENY",
                "users": {"b b": {}, "ok": {"registeredModels": {"*": "WRITE"}, "workspaces": {"team-a": "READ"}}},
            },
        }
    )
    assert set(found) == {
        "auth.defaultPermission",
        "auth.users.b b.[key]",
        "auth.users.ok.registeredModels.*",
        "auth.users.ok.workspaces.team-a",
    }
    assert "WRITE" in found["auth.users.ok.registeredModels.*"]
    # DENY is a grant, not a default; a workspace grant is USE or MANAGE (MLflow's own rule).
    assert "'NO_PERMISSIONS'" in found["auth.defaultPermission"]
    assert found["auth.users.ok.workspaces.team-a"] == "Input should be 'USE' or 'MANAGE' (got 'READ')"


def test_docker_mode_is_proxy_or_mlflow_and_aws_users_need_basic_auth():
    assert "auth.mode" in problems({"target": "docker", "auth": {"mode": "basic-auth"}})
    raw = copy.deepcopy(GOOD)
    raw["auth"] = {"mode": "oidc", "users": {"alice": {"roles": ["data-scientist"]}}}
    found = problems(raw)
    assert found["auth.users"] == "needs auth.mode: basic-auth (MLflow's users); it is 'oidc'"
    raw["auth"] = {"users": {"alice": {"roles": ["data-scientist"]}}}
    settings = parse_settings(raw)
    assert settings.auth.mode == "basic-auth" and list(settings.auth.users) == ["alice"]
    raw["auth"] = {"mode": "basic-auth", "adminUsername": "root", "users": {"root": {}}}
    assert "auth.users.root" in problems(raw)
