"""Access control as code: the users and roles MLflow's basic-auth app enforces, from stack config.

The permission names are MLflow 3.17's (mlflow/server/auth/permissions.py): READ < USE < EDIT <
MANAGE on a resource, DENY an absolute veto; a workspace grant is USE (member: may create) or
MANAGE (workspace admin). Grants name every resource of a kind (`"*"`) or one of them (an
experiment id, a registered model or prompt name). The boot step applies the declaration
(images/mlflow/auth_reconcile.py); the promotion rule is images/mlflow/promotion_guard.py.
"""

from __future__ import annotations

import difflib
import re
from typing import Annotated, Literal

from pydantic import AfterValidator, Field

from components.config.base import ConfigModel
from images.mlflow.server_contract import USER_ROLE_PREFIX

ResourceLevel = Literal["READ", "USE", "EDIT", "MANAGE", "DENY"]
WorkspaceLevel = Literal["USE", "MANAGE"]
# MLflow's `default_permission`: what a user holds on a resource nobody granted them.
DefaultLevel = Literal["NO_PERMISSIONS", "READ", "USE", "EDIT", "MANAGE"]

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$"


def _check_workspace_name(value: str) -> str:
    # MLflow's workspace names: DNS-label-like (mlflow/store/workspace, 63 characters).
    if not re.fullmatch(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?", value):
        raise ValueError(f"'{value}' is not a workspace name (lowercase letters, digits and -, at most 63)")
    return value


Name = Annotated[str, Field(pattern=NAME_PATTERN)]
WorkspaceName = Annotated[str, AfterValidator(_check_workspace_name)]


class Grants(ConfigModel):
    """Permissions on each kind of resource: `{"*": LEVEL}` for all of them, or per id / name."""

    experiments: dict[str, ResourceLevel] = Field(default_factory=dict)
    """experiment id (or `"*"`) -> `READ`, `USE`, `EDIT`, `MANAGE` or `DENY`"""
    registered_models: dict[str, ResourceLevel] = Field(default_factory=dict)
    """registered model name (or `"*"`) -> level"""
    prompts: dict[str, ResourceLevel] = Field(default_factory=dict)
    """prompt name (or `"*"`) -> level"""
    workspaces: dict[WorkspaceName, WorkspaceLevel] = Field(default_factory=dict)
    """workspace -> `USE` (member: sees it, creates in it) or `MANAGE` (its admin); needs `tracking.workspaces`"""


class RoleSettings(Grants):
    """One MLflow role (3.17's RBAC roles, in the `default` workspace): grants its members share."""

    promote: bool = False
    """members may set, move and delete registered-model aliases, transition stages and delete registered models (the platform's promotion rule; MLflow's own check lets anyone with EDIT do it)"""


class UserSettings(Grants):
    """A user the platform manages: its password is generated, its grants are these plus its roles'."""

    roles: list[str] = Field(default_factory=list)
    """names of `auth.roles` this user is a member of"""


# The governance layout, as a stack file would write it (docs/access-control.md explains it).
DEFAULT_ROLE_LAYOUT = {
    # Sees every experiment and model, creates its own (MLflow gives a creator MANAGE on it),
    # registers versions of any model (EDIT). Not promotion: it has no `promote`.
    "data-scientist": {"experiments": {"*": "READ"}, "registeredModels": {"*": "EDIT"}, "prompts": {"*": "EDIT"}},
    # Reads everything, manages every registered model, and may promote.
    "governance": {
        "experiments": {"*": "READ"},
        "registeredModels": {"*": "MANAGE"},
        "prompts": {"*": "READ"},
        "promote": True,
    },
}


def default_roles() -> dict[str, RoleSettings]:
    return {name: RoleSettings.model_validate(role) for name, role in DEFAULT_ROLE_LAYOUT.items()}


class AccessSettings(ConfigModel):
    """Who may do what, with MLflow's basic-auth app (the keys both targets share)."""

    default_permission: DefaultLevel = "NO_PERMISSIONS"
    """MLflow's `default_permission`: what every user holds on a resource nobody granted them (MLflow's own default, `READ`, shows everyone everything)"""
    roles: dict[Name, RoleSettings] = Field(default_factory=default_roles)
    """role -> its grants (`experiments`, `registeredModels`, `prompts`, `workspaces`) and `promote`; the default is the governance layout (docs/access-control.md): `data-scientist`, `governance` (the only one with `promote`). Setting it replaces the layout"""
    users: dict[Name, UserSettings] = Field(default_factory=dict)
    """user -> `roles` and its own grants; passwords are generated (`pulumi stack output users --show-secrets`). A user removed from here is deleted from MLflow at the next deploy"""

    def access_problems(self, prefix: str, *, admin_username: str, workspaces: bool) -> list[tuple[str, str]]:
        """Rules across the access keys, as (key path, reason)."""
        problems: list[tuple[str, str]] = []
        grantees: list[tuple[str, Grants]] = [
            *((f"roles.{name}", role) for name, role in self.roles.items()),
            *((f"users.{name}", user) for name, user in self.users.items()),
        ]
        for path, grants in grantees:
            for pattern in grants.experiments:
                if pattern != "*" and not pattern.isdigit():
                    problems.append((f"{prefix}.{path}.experiments", f"'{pattern}' is not an experiment id or '*'"))
            if grants.workspaces and not workspaces:
                problems.append((f"{prefix}.{path}.workspaces", "needs tracking.workspaces: true"))
        for name, user in self.users.items():
            if name == admin_username:
                problems.append(
                    (
                        f"{prefix}.users.{name}",
                        "is the admin user, which MLflow creates itself and the platform never touches",
                    )
                )
            for role in user.roles:
                if role not in self.roles:
                    close = difflib.get_close_matches(role, list(self.roles), n=1)
                    hint = (
                        f"; did you mean '{close[0]}'?" if close else f" ({', '.join(self.roles) or 'none declared'})"
                    )
                    problems.append((f"{prefix}.users.{name}.roles", f"'{role}' is not in {prefix}.roles{hint}"))
        for name in self.roles:
            if name.startswith(USER_ROLE_PREFIX):
                problems.append(
                    (f"{prefix}.roles.{name}", f"names starting with '{USER_ROLE_PREFIX}' are the platform's")
                )
        return problems
