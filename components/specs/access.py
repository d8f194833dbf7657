"""The auth declaration the boot step applies (images/mlflow/auth_reconcile.py), from `auth.*`.

Pure: the stacks call `render_declaration` inside an Output.apply with the generated passwords
(the result is a secret: a file on Docker, a Secrets Manager key on AWS); the e2e kit with its own.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from components.config.access import AccessSettings, Grants
from images.mlflow.server_contract import AUTH_DECLARATION_VERSION, DEFAULT_WORKSPACE

# The config's keys -> MLflow's resource types (mlflow/server/auth/permissions.py).
RESOURCE_TYPES = {"experiments": "experiment", "registered_models": "registered_model", "prompts": "prompt"}
WORKSPACE_TYPE = "workspace"


def grants_by_workspace(grants: Grants) -> dict[str, list[list[str]]]:
    """Resource grants live in `default` (MLflow resolves a grant in the resource's workspace);
    each workspace grant in a role of its own workspace."""
    rows: dict[str, list[list[str]]] = {}
    for field, kind in RESOURCE_TYPES.items():
        for pattern, level in sorted(getattr(grants, field).items()):
            rows.setdefault(DEFAULT_WORKSPACE, []).append([kind, pattern, level])
    for workspace, level in sorted(grants.workspaces.items()):
        rows.setdefault(workspace, []).append([WORKSPACE_TYPE, "*", level])
    return rows


def render_declaration(access: AccessSettings, passwords: Mapping[str, str]) -> str:
    """The declaration as JSON: every role and user of `access`, each user with its password."""
    missing = sorted(set(access.users) - set(passwords))
    if missing:
        raise ValueError(f"no password for declared users {missing}")
    document = {
        "version": AUTH_DECLARATION_VERSION,
        "roles": {name: grants_by_workspace(role) for name, role in sorted(access.roles.items())},
        "users": {
            name: {"password": passwords[name], "roles": sorted(user.roles), "grants": grants_by_workspace(user)}
            for name, user in sorted(access.users.items())
        },
    }
    return json.dumps(document, sort_keys=True, separators=(",", ":"))


def promoter_roles(access: AccessSettings) -> tuple[str, ...]:
    """The roles whose members may promote (`promote: true`), for the promotion guard."""
    return tuple(sorted(name for name, role in access.roles.items() if role.promote))
