"""The auth declaration against MLflow's real auth store (SQLite in a temp dir): what it creates,
what a second run changes (nothing: same rows), what a removal deletes, what it never touches."""

from __future__ import annotations

import json
import shutil
import sys

import pytest
import sqlalchemy

from components.config import parse_settings
from components.specs.access import render_declaration
from components.versions import MLFLOW_IMAGE_DIR

sys.path.insert(0, str(MLFLOW_IMAGE_DIR))
import auth_reconcile  # noqa: E402
import promotion_guard  # noqa: E402

ADMIN = "admin"
TABLES = ("users", "roles", "role_permissions", "user_role_assignments")


def declaration(users: dict, roles: dict | None = None) -> dict:
    auth = {"mode": "mlflow", "users": users, **({"roles": roles} if roles is not None else {})}
    settings = parse_settings({"target": "docker", "tracking": {"workspaces": True}, "auth": auth})
    text = render_declaration(settings.auth, {name: f"password-of-{name}-0123456789" for name in users})
    return auth_reconcile.parse_declaration(text)


@pytest.fixture(scope="module")
def migrated(tmp_path_factory):
    """An auth database at MLflow's head with its admin: migrated once (~3 s), copied per test."""
    from mlflow.server.auth.sqlalchemy_store import SqlAlchemyStore

    path = tmp_path_factory.mktemp("auth") / "template.db"
    store = SqlAlchemyStore()
    store.init_db(f"sqlite:///{path}")
    store.create_user(ADMIN, "admin-password-0123456789", is_admin=True)
    store.engine.dispose()
    return path


@pytest.fixture
def store(migrated, tmp_path):
    from mlflow.server.auth.sqlalchemy_store import SqlAlchemyStore

    path = tmp_path / "auth.db"
    shutil.copyfile(migrated, path)
    store = SqlAlchemyStore()
    store.init_db(f"sqlite:///{path}")
    yield store
    store.engine.dispose()


def rows(store) -> dict[str, list[tuple]]:
    with store.engine.connect() as connection:
        return {t: sorted(connection.execute(sqlalchemy.text(f"SELECT * FROM {t}")).all()) for t in TABLES}


def grants_of(store, username: str) -> set[tuple[str, str, str, str]]:
    user = store.get_user(username)
    return {
        (role.workspace, p.resource_type, p.resource_pattern, p.permission)
        for role in store.list_user_roles(user.id)
        for p in role.permissions
    }


def test_declared_users_get_their_password_roles_and_grants(store):
    wanted = declaration(
        {
            "alice": {"roles": ["data-scientist"]},
            "gina": {"roles": ["governance"], "experiments": {"7": "DENY"}, "workspaces": {"team-a": "USE"}},
        }
    )
    changes = auth_reconcile.reconcile(store, wanted, admin_username=ADMIN)
    assert "created user alice" in changes and "created user gina" in changes
    assert store.authenticate_user("alice", "password-of-alice-0123456789")
    assert not store.get_user("alice").is_admin
    assert grants_of(store, "alice") == {
        ("default", "experiment", "*", "READ"),
        ("default", "registered_model", "*", "EDIT"),
        ("default", "prompt", "*", "EDIT"),
    }
    assert grants_of(store, "gina") == {
        ("default", "experiment", "*", "READ"),
        ("default", "registered_model", "*", "MANAGE"),
        ("default", "prompt", "*", "READ"),
        ("default", "experiment", "7", "DENY"),
        ("team-a", "workspace", "*", "USE"),
    }
    # The roles are MLflow's own (its admin UI lists them), marked as the platform's.
    names = {(r.workspace, r.name) for r in store.list_roles() if r.description == auth_reconcile.MANAGED_DESCRIPTION}
    assert names == {
        ("default", "data-scientist"),
        ("default", "governance"),
        ("default", "mlflow-platform.user.alice"),
        ("default", "mlflow-platform.user.gina"),
        ("team-a", "mlflow-platform.user.gina"),
    }


def test_a_second_run_writes_nothing(store):
    wanted = declaration({"alice": {"roles": ["data-scientist"], "registeredModels": {"fraud": "MANAGE"}}})
    assert auth_reconcile.reconcile(store, wanted, admin_username=ADMIN)
    before = rows(store)
    assert auth_reconcile.reconcile(store, wanted, admin_username=ADMIN) == []
    assert rows(store) == before  # password hashes included: a salted rehash would differ


def test_changes_are_applied_and_a_removed_user_is_deleted(store):
    auth_reconcile.reconcile(
        store, declaration({"alice": {"roles": ["data-scientist"]}, "bob": {}}), admin_username=ADMIN
    )
    # Made in MLflow itself: a UI user, a UI role, and a creator's MANAGE (MLflow's own grant).
    store.create_user("carol", "carol-password-0123456789")
    ui_role = store.create_role("reviewers", "default", "made in the UI")
    store.assign_role_to_user(store.get_user("alice").id, ui_role.id)
    store.grant_user_permission("alice", "experiment", "42", "MANAGE")

    changes = auth_reconcile.reconcile(
        store,
        declaration({"alice": {"roles": ["governance"]}}, roles={"governance": {"registeredModels": {"*": "READ"}}}),
        admin_username=ADMIN,
    )
    assert "deleted user bob (removed from the declaration)" in changes
    assert not store.has_user("bob")
    assert "deleted role data-scientist in workspace default" in changes
    assert ("default", "registered_model", "*", "READ") in grants_of(store, "alice")
    # Untouched: the admin, the UI's user and role, MLflow's own per-user grant.
    assert store.get_user(ADMIN).is_admin and store.has_user("carol")
    assert ui_role.id in {r.id for r in store.list_user_roles(store.get_user("alice").id)}
    assert ("default", "experiment", "42", "MANAGE") in grants_of(store, "alice")


def test_a_changed_password_is_set_once(store):
    auth_reconcile.reconcile(store, declaration({"alice": {}}), admin_username=ADMIN)
    changed = declaration({"alice": {}})
    changed["users"]["alice"]["password"] = "another-password-0123456789"
    assert auth_reconcile.reconcile(store, changed, admin_username=ADMIN) == ["set the password of user alice"]
    assert store.authenticate_user("alice", "another-password-0123456789")
    assert auth_reconcile.reconcile(store, changed, admin_username=ADMIN) == []


def test_it_refuses_to_manage_an_admin_or_take_over_a_foreign_role(store):
    admin = declaration({"alice": {}})
    admin["users"][ADMIN] = admin["users"].pop("alice")
    with pytest.raises(auth_reconcile.ReconcileError, match="admin"):
        auth_reconcile.reconcile(store, admin, admin_username=ADMIN)
    store.create_role("governance", "default", "made in the UI")
    with pytest.raises(auth_reconcile.ReconcileError, match="'governance' in workspace 'default' exist but"):
        auth_reconcile.reconcile(store, declaration({"alice": {}}), admin_username=ADMIN)


def test_a_bad_declaration_is_a_clear_error():
    with pytest.raises(auth_reconcile.ReconcileError, match="not JSON"):
        auth_reconcile.parse_declaration("{")
    with pytest.raises(auth_reconcile.ReconcileError, match="version 1"):
        auth_reconcile.parse_declaration(json.dumps({"version": 2}))


def test_only_members_of_a_promoting_role_may_promote():
    assert promotion_guard.may_promote(["data-scientist", "governance"], frozenset({"governance"}))
    assert not promotion_guard.may_promote(["data-scientist"], frozenset({"governance"}))
    assert not promotion_guard.may_promote(["governance"], frozenset())


@pytest.fixture
def validators(monkeypatch):
    """MLflow's validator table, put back after the test (install() rewrites it in place)."""
    from mlflow.server import auth

    saved = dict(auth.BEFORE_REQUEST_VALIDATORS)
    yield auth.BEFORE_REQUEST_VALIDATORS
    auth.BEFORE_REQUEST_VALIDATORS.clear()
    auth.BEFORE_REQUEST_VALIDATORS.update(saved)


def test_the_guard_wraps_the_four_promotion_routes_and_nothing_else(validators):
    before = dict(validators)
    assert promotion_guard.install(["governance"]) == 8
    changed = sorted(key for key, validator in validators.items() if validator is not before[key])
    assert changed == sorted(
        (f"/{prefix}/2.0/mlflow{path}", method)
        for prefix in ("api", "ajax-api")
        for path, method in promotion_guard.GUARDED_OPERATIONS.values()
    )
    # The validator TransitionModelVersionStage shares with version updates and tags: those stay MLflow's.
    assert (
        validators[("/api/2.0/mlflow/model-versions/update", "PATCH")]
        is before[("/api/2.0/mlflow/model-versions/update", "PATCH")]
    )


def test_the_guard_refuses_an_mlflow_whose_checks_moved(validators):
    validators[("/api/2.0/mlflow/registered-models/alias", "POST")] = lambda: True
    with pytest.raises(RuntimeError, match="is not checked by validate_can_set_model_or_prompt_version_alias"):
        promotion_guard.install(["governance"])
