"""IAM: no administrator grants, and roles only a named principal may assume."""

from __future__ import annotations

from .base import UNKNOWN, Res, as_list, items, policy_statements, resource_rule

ROLE = "aws:iam/role:Role"
IDENTITY_POLICIES = (
    "aws:iam/rolePolicy:RolePolicy",
    "aws:iam/policy:Policy",
    "aws:iam/userPolicy:UserPolicy",
    "aws:iam/groupPolicy:GroupPolicy",
)
ATTACHMENTS = (
    "aws:iam/rolePolicyAttachment:RolePolicyAttachment",
    "aws:iam/userPolicyAttachment:UserPolicyAttachment",
    "aws:iam/groupPolicyAttachment:GroupPolicyAttachment",
    "aws:iam/policyAttachment:PolicyAttachment",
)


def _documents(r: Res) -> list[tuple[str, object]]:
    """(where, document) of every identity policy a resource carries."""
    if r.type == ROLE:
        return [
            (f"inline policy {p.get('name', '?')!r}", p.get("policy"))
            for p in items(r.get("inlinePolicies"))
            if isinstance(p, dict)
        ]
    return [("policy", r.get("policy"))]


def _wild(values: object) -> bool:
    return any(v in ("*", "*:*") for v in as_list(values))


@resource_rule(
    "iam-no-wildcard-admin",
    ["CKV_AWS_62", "CKV_AWS_1", "FSBP IAM.1", "CIS AWS 1.16"],
    "No IAM policy allows action * on resource *",
    [ROLE, *IDENTITY_POLICIES],
)
def no_wildcard_admin(r: Res) -> list[str]:
    found = []
    for where, document in _documents(r):
        if document is UNKNOWN:
            continue
        for statement in policy_statements(document):
            if (
                statement.get("Effect") == "Allow"
                and _wild(statement.get("Action"))
                and _wild(statement.get("Resource"))
            ):
                found.append(f"{where}: statement {statement.get('Sid', '(no Sid)')!r} allows * on *")
    return found


@resource_rule(
    "iam-no-administrator-access",
    ["CKV_AWS_274"],
    "The AWS-managed AdministratorAccess policy is attached to nothing",
    [ROLE, *ATTACHMENTS],
)
def no_administrator_access(r: Res) -> list[str]:
    arns = as_list(r.get("managedPolicyArns")) if r.type == ROLE else [r.get("policyArn")]
    return [
        f"{arn} must not be attached"
        for arn in arns
        if isinstance(arn, str) and arn.endswith(":policy/AdministratorAccess")
    ]


@resource_rule(
    "iam-trust-named-principals",
    ["CKV_AWS_60"],
    "A role can be assumed only by named principals, never by everyone",
    [ROLE],
)
def trust_named_principals(r: Res) -> list[str]:
    found = []
    for statement in policy_statements(r.get("assumeRolePolicy")):
        principal = statement.get("Principal")
        aws = principal.get("AWS") if isinstance(principal, dict) else None
        if statement.get("Effect") == "Allow" and (principal == "*" or "*" in as_list(aws)):
            found.append(
                f"assumeRolePolicy statement {statement.get('Sid', '(no Sid)')!r} lets any principal assume the role"
            )
    return found
