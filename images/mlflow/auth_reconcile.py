"""Bring MLflow's auth database to the stack's declaration of users and roles, through MLflow's
own auth store (mlflow.server.auth.sqlalchemy_store.SqlAlchemyStore), idempotently.

The declaration (components/specs/access.py renders it; a secret: it holds the passwords):

    {"version": 1,
     "roles": {"governance": {"default": [["registered_model", "*", "MANAGE"], ...]}, ...},
     "users": {"alice": {"password": "...", "roles": ["data-scientist"],
                         "grants": {"default": [["experiment", "*", "EDIT"]], "team-a": [["workspace", "*", "USE"]]}}}}

What the platform manages, and nothing else:
- Roles whose description is MANAGED_DESCRIPTION: each declared role, in every workspace it has
  grants in, and one role per declared user (`mlflow-platform.user.<name>`, always in `default`)
  holding that user's own grants. A managed role not declared any more is deleted.
- Users assigned to their own `mlflow-platform.user.<name>` role: those are the platform's. A
  managed user no longer declared is deleted (MLflow has no disabled state: deleting is what
  stops its password working, and removes its grants; what it created stays). The admin, users
  made in MLflow's UI and roles made there are never touched, nor MLflow's own per-user grants
  (`__user_<id>__`: what a creator gets on what it created).
- Passwords are checked, not rewritten: a hash is salted, so rewriting would change the row on
  every deploy. A second run with the same declaration writes nothing.

Standard library plus the image's mlflow only; mlflow_boot calls `reconcile` under its lock.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from server_contract import AUTH_DECLARATION_VERSION as DECLARATION_VERSION
from server_contract import DEFAULT_WORKSPACE, USER_ROLE_PREFIX
from server_contract import MANAGED_ROLE_DESCRIPTION as MANAGED_DESCRIPTION

log = logging.getLogger("mlflow_boot")

Grant = tuple[str, str, str]  # (resource_type, resource_pattern, permission)


class ReconcileError(RuntimeError):
    """The declaration cannot be applied as it is: the message says why."""


def parse_declaration(text: str) -> dict[str, Any]:
    try:
        document = json.loads(text)
    except ValueError as error:
        raise ReconcileError(f"the auth declaration is not JSON: {error.msg}") from None
    if not isinstance(document, dict) or document.get("version") != DECLARATION_VERSION:
        raise ReconcileError(f"the auth declaration is not version {DECLARATION_VERSION} of its format")
    return document


def user_role_name(username: str) -> str:
    return f"{USER_ROLE_PREFIX}{username}"


def desired_roles(declaration: Mapping[str, Any]) -> dict[tuple[str, str], set[Grant]]:
    """(workspace, role name) -> its grants, for every role the declaration makes."""
    roles: dict[tuple[str, str], set[Grant]] = {}
    for name, by_workspace in declaration.get("roles", {}).items():
        for workspace, grants in by_workspace.items():
            roles[(workspace, name)] = {tuple(grant) for grant in grants}  # type: ignore[misc]
    for username, user in declaration.get("users", {}).items():
        # Always in `default`, grants or not: the mark that this user is the platform's.
        roles[(DEFAULT_WORKSPACE, user_role_name(username))] = set()
        for workspace, grants in user.get("grants", {}).items():
            roles[(workspace, user_role_name(username))] = {tuple(grant) for grant in grants}  # type: ignore[misc]
    return roles


def desired_assignments(declaration: Mapping[str, Any]) -> dict[str, set[tuple[str, str]]]:
    """user -> the (workspace, role) pairs it is a member of."""
    roles = desired_roles(declaration)
    assignments: dict[str, set[tuple[str, str]]] = {}
    for username, user in declaration.get("users", {}).items():
        names = {user_role_name(username), *user.get("roles", [])}
        assignments[username] = {key for key in roles if key[1] in names}
    return assignments


def reconcile(store, declaration: Mapping[str, Any], *, admin_username: str) -> list[str]:
    """Apply `declaration` through MLflow's auth `store` (init_db done); returns what changed."""
    changes: list[str] = []
    declared_users: Mapping[str, Any] = declaration.get("users", {})
    users = {user.username: user for user in store.list_users()}
    roles = store.list_roles()
    managed_roles = {(role.workspace, role.name): role for role in roles if role.description == MANAGED_DESCRIPTION}
    foreign_roles = {(role.workspace, role.name) for role in roles} - set(managed_roles)
    managed_users = _managed_usernames(store, users, managed_roles)

    # Users: the declared ones exist with their password; the platform's undeclared ones go.
    for name, user in declared_users.items():
        existing = users.get(name)
        if name == admin_username or (existing is not None and existing.is_admin):
            raise ReconcileError(f"user {name!r} is an MLflow admin: the platform never manages an admin")
        if existing is None:
            users[name] = store.create_user(name, user["password"])
            changes.append(f"created user {name}")
        elif not store.authenticate_user(name, user["password"], use_primary=True):
            store.update_user(name, password=user["password"])
            changes.append(f"set the password of user {name}")
    for name in sorted(managed_users - set(declared_users)):
        if name == admin_username or users[name].is_admin:
            continue
        store.delete_user(name)
        del users[name]
        changes.append(f"deleted user {name} (removed from the declaration)")

    # Roles: each declared one with exactly its grants; the platform's undeclared ones go.
    wanted = desired_roles(declaration)
    taken = sorted(key for key in wanted if key in foreign_roles)
    if taken:
        named = ", ".join(f"{name!r} in workspace {workspace!r}" for workspace, name in taken)
        raise ReconcileError(f"roles {named} exist but were not made by the platform: rename them or the declared ones")
    role_ids: dict[tuple[str, str], int] = {}
    for key, grants in sorted(wanted.items()):
        role = managed_roles.get(key)
        if role is None:
            role = store.create_role(key[1], key[0], MANAGED_DESCRIPTION)
            changes.append(f"created role {key[1]} in workspace {key[0]}")
        role_ids[key] = role.id
        changes += _set_grants(store, role, grants, label=f"role {key[1]} in workspace {key[0]}")
    for key, role in sorted(managed_roles.items()):
        if key not in wanted:
            store.delete_role(role.id)
            changes.append(f"deleted role {key[1]} in workspace {key[0]}")

    # Memberships of managed roles (others', made in the UI, stay as they are).
    managed_ids = set(role_ids.values())
    for name, keys in sorted(desired_assignments(declaration).items()):
        user_id = users[name].id
        current = {role.id for role in store.list_user_roles(user_id) if role.id in managed_ids}
        target = {role_ids[key] for key in keys}
        for role_id in sorted(target - current):
            store.assign_role_to_user(user_id, role_id)
            changes.append(f"assigned user {name} to role id {role_id}")
        for role_id in sorted(current - target):
            store.unassign_role_from_user(user_id, role_id)
            changes.append(f"removed user {name} from role id {role_id}")
    return changes


def _managed_usernames(store, users: Mapping[str, Any], managed_roles: Mapping[tuple[str, str], Any]) -> set[str]:
    """Users assigned to their own managed role (the mark the platform leaves on its users)."""
    by_id = {user.id: name for name, user in users.items()}
    managed: set[str] = set()
    for (workspace, role_name), role in managed_roles.items():
        if workspace != DEFAULT_WORKSPACE or not role_name.startswith(USER_ROLE_PREFIX):
            continue
        for assignment in store.list_role_users(role.id):
            name = by_id.get(assignment.user_id)
            if name is not None and role_name == user_role_name(name):
                managed.add(name)
    return managed


def _set_grants(store, role, grants: set[Grant], *, label: str) -> list[str]:
    """Make `role`'s permissions exactly `grants`: add, change the level of, remove rows."""
    changes: list[str] = []
    current = {(p.resource_type, p.resource_pattern): p for p in role.permissions}
    wanted = {(kind, pattern): level for kind, pattern, level in grants}
    for (kind, pattern), level in sorted(wanted.items()):
        row = current.get((kind, pattern))
        if row is None:
            store.add_role_permission(role.id, kind, pattern, level)
            changes.append(f"{label}: granted {level} on {kind} {pattern}")
        elif row.permission != level:
            store.update_role_permission(row.id, level)
            changes.append(f"{label}: {kind} {pattern} {row.permission} -> {level}")
    for (kind, pattern), row in sorted(current.items()):
        if (kind, pattern) not in wanted:
            store.remove_role_permission(row.id)
            changes.append(f"{label}: revoked {row.permission} on {kind} {pattern}")
    return changes


def apply(auth_uri: str, text: str, *, admin_username: str) -> list[str]:
    """Parse the declaration and reconcile the auth database at `auth_uri` (migrated already)."""
    from mlflow.server.auth.sqlalchemy_store import SqlAlchemyStore

    declaration = parse_declaration(text)
    store = SqlAlchemyStore()
    store.init_db(auth_uri)
    try:
        changes = reconcile(store, declaration, admin_username=admin_username)
    finally:
        store.engine.dispose()
    for change in changes:
        log.info("auth: %s", change)
    log.info("auth declaration: %d change(s), %d managed user(s)", len(changes), len(declaration.get("users", {})))
    return changes
