"""The Application Load Balancer: HTTPS with a modern TLS policy, HTTP only to redirect."""

from __future__ import annotations

from .base import (
    LISTENERS,
    LOAD_BALANCERS,
    UNKNOWN,
    Res,
    Stack,
    as_list,
    get,
    is_true,
    label,
    resource_rule,
    stack_rule,
)

LISTENER_RULES = ("aws:lb/listenerRule:ListenerRule", "aws:alb/listenerRule:ListenerRule")
# Exactly these (TLS 1.2+ with forward secrecy, or TLS 1.3 only): an allow-list, never a prefix match,
# so "ELBSecurityPolicy-TLS13-1-0-2021-06" (TLS 1.0 allowed) cannot slip through.
ALLOWED_TLS_POLICIES = (
    "ELBSecurityPolicy-TLS13-1-2-Res-2021-06",
    "ELBSecurityPolicy-TLS13-1-2-2021-06",
    "ELBSecurityPolicy-TLS13-1-3-2021-06",
    "ELBSecurityPolicy-TLS13-1-2-Res-FIPS-2023-04",
    "ELBSecurityPolicy-TLS13-1-2-FIPS-2023-04",
    "ELBSecurityPolicy-TLS13-1-3-FIPS-2023-04",
)


def _application(lb: Res) -> bool:
    return lb.get("loadBalancerType", "application") == "application"


def _protocol(listener: Res) -> str | object:
    # An ALB listener without a protocol is HTTP (the provider's default).
    protocol = listener.get("protocol", "HTTP")
    return protocol.upper() if isinstance(protocol, str) else protocol


@stack_rule(
    "alb-https-tls-policy",
    ["CKV_AWS_103"],
    "Each ALB has an HTTPS listener with a certificate and an allowed TLS policy",
    [*LOAD_BALANCERS, *LISTENERS],
)
def https_tls_policy(stack: Stack) -> list[tuple[str, str]]:
    found = []
    for listener in stack.of(*LISTENERS):
        if _protocol(listener) != "HTTPS":
            continue
        policy = listener.get("sslPolicy")
        if policy is not UNKNOWN and policy not in ALLOWED_TLS_POLICIES:
            found.append(
                (
                    listener.urn,
                    f"{label(listener)}: sslPolicy {policy!r} is not one of the allowed policies "
                    f"({', '.join(ALLOWED_TLS_POLICIES)})",
                )
            )
        if listener.get("certificateArn") in (None, ""):
            found.append((listener.urn, f"{label(listener)} has no certificateArn"))
    for lb in stack.of(*LOAD_BALANCERS):
        if not _application(lb):
            continue
        listeners = stack.joined_to(lb, "loadBalancerArn", *LISTENERS)
        if not any(_protocol(listener) in ("HTTPS", UNKNOWN) for listener in listeners):
            found.append((lb.urn, f"{label(lb)} has no HTTPS listener"))
    return found


def _redirects_to_https(action: dict) -> bool:
    kind, protocol = get(action, "type"), get(action, "redirect.protocol")
    if kind is UNKNOWN or protocol is UNKNOWN:
        return True  # judged at `pulumi up`
    return kind == "redirect" and protocol == "HTTPS"


@stack_rule(
    "alb-http-redirects-only",
    ["CKV_AWS_2", "CKV2_AWS_20", "FSBP ELB.1"],
    "Plain-HTTP listeners (and their rules) only redirect to HTTPS",
    [*LISTENERS, *LISTENER_RULES],
)
def http_redirects_only(stack: Stack) -> list[tuple[str, str]]:
    found = []
    for listener in stack.of(*LISTENERS):
        if _protocol(listener) != "HTTP":
            continue
        actions = listener.get("defaultActions", [])
        if actions is UNKNOWN:
            continue
        if not actions or not all(_redirects_to_https(a) for a in as_list(actions)):
            found.append(
                (listener.urn, f"{label(listener)} serves plain HTTP: its default action must redirect to HTTPS")
            )
        for rule in stack.joined_to(listener, "listenerArn", *LISTENER_RULES):
            rule_actions = rule.get("actions", [])
            if rule_actions is not UNKNOWN and not all(_redirects_to_https(a) for a in as_list(rule_actions)):
                found.append((rule.urn, f"{label(rule)} on HTTP {label(listener)} must only redirect to HTTPS"))
    return found


@resource_rule(
    "alb-drop-invalid-headers", ["CKV_AWS_131", "FSBP ELB.4"], "ALB drops invalid HTTP header fields", LOAD_BALANCERS
)
def drop_invalid_headers(r: Res) -> list[str]:
    if not _application(r):
        return []
    ok = is_true(r.get("dropInvalidHeaderFields"))
    return [] if ok in (True, None) else ["dropInvalidHeaderFields must be true"]


@resource_rule("alb-access-logs", ["CKV_AWS_91", "FSBP ELB.5"], "ALB writes access logs to S3", LOAD_BALANCERS)
def access_logs(r: Res) -> list[str]:
    enabled = is_true(r.get("accessLogs.enabled"))
    if enabled is None:
        return []
    if not enabled or r.get("accessLogs.bucket") in (None, ""):
        return ["accessLogs must be enabled with a bucket"]
    return []


@resource_rule(
    "alb-deletion-protection", ["CKV_AWS_150", "FSBP ELB.6"], "ALB has deletion protection", LOAD_BALANCERS, dev=False
)
def deletion_protection(r: Res) -> list[str]:
    ok = is_true(r.get("enableDeletionProtection"))
    return [] if ok in (True, None) else ["enableDeletionProtection must be true"]


@resource_rule(
    "alb-desync-mitigation", ["FSBP ELB.12"], "ALB desync mitigation is defensive or strictest", LOAD_BALANCERS
)
def desync_mitigation(r: Res) -> list[str]:
    mode = r.get("desyncMitigationMode", "defensive")
    if mode is UNKNOWN or not _application(r) or mode in ("defensive", "strictest"):
        return []
    return [f"desyncMitigationMode is {mode!r}; use 'defensive' or 'strictest'"]


def _sign_ins(actions: object) -> list[dict]:
    return [a for a in as_list(actions) if str(get(a, "type")).startswith("authenticate-")]


def _on_unauthenticated(action: dict) -> object:
    """What the authenticate action does without a session: authenticate (AWS's default), deny, allow."""
    block = "authenticateOidc" if get(action, "type") == "authenticate-oidc" else "authenticateCognito"
    return get(action, f"{block}.onUnauthenticatedRequest", "authenticate")


@stack_rule(
    "alb-rules-keep-sign-in",
    ["AWS Well-Architected SEC02 (authenticate every request)"],
    "With sign-in at an ALB listener, each of its rules that forwards signs in the same way first",
    [*LISTENERS, *LISTENER_RULES],
)
def rules_keep_sign_in(stack: Stack) -> list[tuple[str, str]]:
    """A listener rule replaces the default actions for the paths it matches: one that forwards
    without the listener's authenticate action (or with `allow`) opens those paths to anyone."""
    found = []
    for listener in stack.of(*LISTENERS):
        defaults = listener.get("defaultActions", [])
        if defaults is UNKNOWN:
            continue
        kinds = {get(a, "type") for a in _sign_ins(defaults)}
        if not kinds:
            continue
        for rule in stack.joined_to(listener, "listenerArn", *LISTENER_RULES):
            actions = rule.get("actions", [])
            types = [] if actions is UNKNOWN else [get(a, "type") for a in as_list(actions)]
            if "forward" not in types or any(t is UNKNOWN for t in types):
                continue  # nothing forwarded, or judged at `pulumi up`
            signs_in = [a for a in _sign_ins(actions) if get(a, "type") in kinds and _on_unauthenticated(a) != "allow"]
            if not signs_in:
                kind = ", ".join(sorted(map(str, kinds)))
                found.append((rule.urn, f"{label(rule)} forwards without the sign-in of {label(listener)} ({kind})"))
    return found
