"""The platform's promotion rule, inside MLflow's basic-auth app: only members of a promoting
role (`auth.roles.<name>.promote`) may set, move or delete a registered model's alias, transition
a version's stage or delete a registered model.

Why it is needed: MLflow 3.17.2 checks SetRegisteredModelAlias against `update` (EDIT) on the
registered model, the same permission CreateModelVersion needs (mlflow/server/auth/__init__.py:
validate_can_set_model_or_prompt_version_alias, _authorize_create_version), and gives MANAGE to
whoever creates a model. No grant lets a user register versions but not move `champion`.

How: each of those routes' MLflow validator is wrapped, in MLflow's own table
(BEFORE_REQUEST_VALIDATORS), so MLflow still authenticates first, still runs its own check
first, still answers its own 403 ("Permission denied") and still lets admins through. Prompts
(which share the alias routes) keep MLflow's rule alone.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

from server_contract import MANAGED_ROLE_DESCRIPTION

log = logging.getLogger("mlflow_platform.promotion")

# The registry operations that promote or retire a model (mlflow.protos.model_registry_pb2),
# and their REST routes (under /api/2.0/mlflow and /ajax-api/2.0/mlflow). By route, not by
# validator: TransitionModelVersionStage's validator also guards model-version updates and tags.
GUARDED_OPERATIONS = {
    "SetRegisteredModelAlias": ("/registered-models/alias", "POST"),
    "DeleteRegisteredModelAlias": ("/registered-models/alias", "DELETE"),
    "TransitionModelVersionStage": ("/model-versions/transition-stage", "POST"),
    "DeleteRegisteredModel": ("/registered-models/delete", "DELETE"),
}


def may_promote(role_names: Iterable[str], promoters: frozenset[str]) -> bool:
    return any(name in promoters for name in role_names)


def _guarded(validator: Callable[[], bool], promoters: frozenset[str]) -> Callable[[], bool]:
    def validate() -> bool:
        from mlflow.server import auth

        if not validator():
            return False
        if auth._request_targets_prompt():
            return True
        user = auth.store.get_user(auth.authenticate_request().username)
        # Only the platform's roles count: a role of the same name made in the UI promotes nobody.
        roles = [r.name for r in auth.store.list_user_roles(user.id) if r.description == MANAGED_ROLE_DESCRIPTION]
        return may_promote(roles, promoters)

    validate.__name__ = f"promotion_guarded_{getattr(validator, '__name__', 'validator')}"
    return validate


def install(promoters: Iterable[str]) -> int:
    """Wrap the guarded operations' validators; returns how many routes it wrapped. Refuses to
    run when it finds none: an MLflow that renamed them must not silently drop the rule."""
    from mlflow.protos import model_registry_pb2
    from mlflow.server import auth

    roles = frozenset(promoters)
    wrapped = 0
    for (path, method), validator in list(auth.BEFORE_REQUEST_VALIDATORS.items()):
        for operation, (suffix, verb) in GUARDED_OPERATIONS.items():
            if method == verb and path.endswith(f"/mlflow{suffix}"):
                # The check we read in MLflow's source, or this MLflow is not the one we reasoned about.
                expected = auth.BEFORE_REQUEST_HANDLERS[getattr(model_registry_pb2, operation)]
                if validator is not expected:
                    raise RuntimeError(f"promotion guard: {method} {path} is not checked by {expected.__name__}")
                auth.BEFORE_REQUEST_VALIDATORS[(path, method)] = _guarded(validator, roles)
                wrapped += 1
    if wrapped < 2 * len(GUARDED_OPERATIONS):  # each under /api and /ajax-api at least
        raise RuntimeError(f"promotion guard: found {wrapped} routes of {sorted(GUARDED_OPERATIONS)} in MLflow")
    log.info("promotion reserved to roles %s on %d routes", sorted(roles) or "(none: admins only)", wrapped)
    return wrapped
