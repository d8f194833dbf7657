"""RDS: the metadata database (PostgreSQL)."""

from __future__ import annotations

from .base import UNKNOWN, Res, Stack, get, is_true, label, number, resource_rule, stack_rule

INSTANCE = "aws:rds/instance:Instance"
PARAMETER_GROUP = "aws:rds/parameterGroup:ParameterGroup"
MIN_BACKUP_DAYS = 7


@resource_rule("rds-storage-encrypted", ["CKV_AWS_16", "FSBP RDS.3"], "RDS storage is encrypted at rest", [INSTANCE])
def storage_encrypted(r: Res) -> list[str]:
    # Replicas inherit encryption from their source; everything else must ask for it.
    if r.get("replicateSourceDb") not in (None, ""):
        return []
    ok = is_true(r.get("storageEncrypted"))
    return [] if ok in (True, None) else ["storageEncrypted must be true"]


@resource_rule("rds-not-public", ["CKV_AWS_17", "FSBP RDS.2"], "RDS instance is not publicly accessible", [INSTANCE])
def not_public(r: Res) -> list[str]:
    return ["publiclyAccessible must be false"] if is_true(r.get("publiclyAccessible")) else []


@resource_rule(
    "rds-backup-retention",
    ["FSBP RDS.11"],
    f"RDS automated backups are kept at least {MIN_BACKUP_DAYS} days",
    [INSTANCE],
)
def backup_retention(r: Res) -> list[str]:
    value = r.get("backupRetentionPeriod")
    if value is UNKNOWN:
        return []
    days = number(value)
    if days is None:
        return [f"backupRetentionPeriod is not set; keep backups at least {MIN_BACKUP_DAYS} days"]
    if days < MIN_BACKUP_DAYS:
        return [f"backupRetentionPeriod is {int(days)} days; keep backups at least {MIN_BACKUP_DAYS} days"]
    return []


@resource_rule(
    "rds-deletion-protection",
    ["CKV_AWS_293", "FSBP RDS.8"],
    "RDS instance has deletion protection",
    [INSTANCE],
    dev=False,
)
def deletion_protection(r: Res) -> list[str]:
    ok = is_true(r.get("deletionProtection"))
    return [] if ok in (True, None) else ["deletionProtection must be true"]


@resource_rule(
    "rds-final-snapshot",
    ["AWS Well-Architected REL09 (back up data)"],
    "Deleting the RDS instance takes a final snapshot",
    [INSTANCE],
)
def final_snapshot(r: Res) -> list[str]:
    if is_true(r.get("skipFinalSnapshot")) is True:
        return ["skipFinalSnapshot must be false"]
    if r.get("finalSnapshotIdentifier") in (None, ""):
        # Without it the provider cannot take the snapshot, so `pulumi destroy` stops at the database.
        return ["finalSnapshotIdentifier must be set"]
    return []


@resource_rule("rds-multi-az", ["CKV_AWS_157", "FSBP RDS.5"], "RDS instance is Multi-AZ", [INSTANCE], dev=False)
def multi_az(r: Res) -> list[str]:
    ok = is_true(r.get("multiAz"))
    return [] if ok in (True, None) else ["multiAz must be true"]


@resource_rule(
    "rds-minor-upgrades-and-logs",
    ["CKV_AWS_226", "CKV_AWS_129", "FSBP RDS.13", "FSBP RDS.9"],
    "RDS applies minor upgrades and exports its logs to CloudWatch",
    [INSTANCE],
)
def upgrades_and_logs(r: Res) -> list[str]:
    problems = []
    if is_true(r.get("autoMinorVersionUpgrade", True)) is False:
        problems.append("autoMinorVersionUpgrade must not be false")
    exports = r.get("enabledCloudwatchLogsExports")
    if exports is None or (isinstance(exports, list) and not exports):
        problems.append("enabledCloudwatchLogsExports must list the engine's logs (postgresql)")
    elif isinstance(exports, list) and r.get("engine") == "postgres" and "postgresql" not in exports:
        problems.append("enabledCloudwatchLogsExports must include 'postgresql'")
    return problems


@resource_rule(
    "rds-enhanced-monitoring",
    ["CKV_AWS_118", "FSBP RDS.6"],
    "RDS Enhanced Monitoring is on (an interval and a monitoring role)",
    [INSTANCE],
)
def enhanced_monitoring(r: Res) -> list[str]:
    interval = r.get("monitoringInterval")
    if interval is UNKNOWN:
        return []
    problems = []
    if not number(interval):
        problems.append("monitoringInterval must be one of 1, 5, 10, 15, 30 or 60 seconds")
    if r.get("monitoringRoleArn") in (None, ""):
        problems.append("monitoringRoleArn must name the role Enhanced Monitoring writes with")
    return problems


@resource_rule(
    "rds-iam-authentication",
    ["CKV_AWS_161", "FSBP RDS.10"],
    "RDS accepts IAM database authentication",
    [INSTANCE],
)
def iam_authentication(r: Res) -> list[str]:
    ok = is_true(r.get("iamDatabaseAuthenticationEnabled"))
    return [] if ok in (True, None) else ["iamDatabaseAuthenticationEnabled must be true"]


@resource_rule(
    "rds-managed-master-password",
    ["FSBP SecretsManager.1", "AWS RDS User Guide: password management with Secrets Manager"],
    "RDS draws, stores and rotates the master password itself (none in the program or its state)",
    [INSTANCE],
)
def managed_master_password(r: Res) -> list[str]:
    if r.get("replicateSourceDb") not in (None, ""):
        return []
    problems = []
    given = [r.get(key) for key in ("password", "passwordWo")]
    if any(value not in (None, "", UNKNOWN) for value in given):
        problems.append("password must not be set: let RDS manage it (manageMasterUserPassword)")
    managed = r.get("manageMasterUserPassword")
    if managed is not UNKNOWN and is_true(managed) is not True:
        problems.append("manageMasterUserPassword must be true")
    return problems


def _parameter_problems(
    stack: Stack, db: Res, name: str, accepted: set[str], requirement: str
) -> list[tuple[str, str]]:
    """`db`'s parameter groups must set `name` to one of `accepted`; a default or unmanaged group
    cannot (it is not in this stack), and an unknown value (preview) is given the benefit."""
    group_name = db.get("parameterGroupName")
    groups = stack.joined(db, "parameterGroupName", PARAMETER_GROUP)
    if not groups:
        if group_name is None or (isinstance(group_name, str) and group_name.startswith("default.")):
            return [(db.urn, f"{label(db)} uses the engine's default parameter group, which does not {requirement}")]
        if isinstance(group_name, str):
            return [
                (
                    db.urn,
                    f"{label(db)}: parameter group '{group_name}' is not managed by this stack, "
                    f"so {name} cannot be verified",
                )
            ]
        return []
    found = []
    for group in groups:
        params = group.get("parameters", [])
        if not isinstance(params, list):
            continue
        values = {get(p, "name"): get(p, "value") for p in params}
        if UNKNOWN in values or values.get(name) is UNKNOWN:
            continue
        if str(values.get(name)) not in accepted:
            wanted = " or ".join(sorted(accepted))
            found.append((db.urn, f"{label(db)}: parameter group '{group.name}' must set {name} to {wanted}"))
    return found


def _postgres_instances(stack: Stack) -> list[Res]:
    return [
        db for db in stack.of(INSTANCE) if isinstance(db.get("engine"), str) and db.get("engine").startswith("postgres")
    ]


@stack_rule(
    "rds-force-ssl",
    ["CKV2_AWS_69"],
    "RDS PostgreSQL only accepts TLS connections (rds.force_ssl=1 in its parameter group)",
    [INSTANCE, PARAMETER_GROUP],
)
def force_ssl(stack: Stack) -> list[tuple[str, str]]:
    return [found for db in _postgres_instances(stack)
            for found in _parameter_problems(stack, db, "rds.force_ssl", {"1"}, "force SSL")]  # fmt: skip


@stack_rule(
    "rds-ddl-logged",
    ["CIS PostgreSQL Benchmark 3.1 (log_statement)", "FSBP RDS.36"],
    "RDS PostgreSQL logs every schema change (log_statement ddl or more) to its exported log",
    [INSTANCE, PARAMETER_GROUP],
)
def ddl_logged(stack: Stack) -> list[tuple[str, str]]:
    return [found for db in _postgres_instances(stack)
            for found in _parameter_problems(stack, db, "log_statement", {"ddl", "mod", "all"}, "log DDL")]  # fmt: skip


# components/specs/durability.py's settings (the pack imports nothing of the program; a unit test
# keeps the two lists equal): what each accepts, lower case. Absent is PostgreSQL's default, on.
_ON = {"on", "true", "yes", "1"}
DURABILITY_PARAMETERS = {"fsync": _ON, "synchronous_commit": {"on", "remote_apply"}, "full_page_writes": _ON}


@resource_rule(
    "rds-durable-commits",
    ["AWS Well-Architected REL09 (back up data)", "PostgreSQL: WAL reliability (fsync, synchronous_commit)"],
    "An RDS PostgreSQL parameter group never weakens fsync, synchronous_commit or full_page_writes",
    [PARAMETER_GROUP],
)
def durable_commits(r: Res) -> list[str]:
    family = r.get("family")
    params = r.get("parameters", [])
    if not (isinstance(family, str) and family.startswith("postgres")) or not isinstance(params, list):
        return []
    problems = []
    for param in params:
        name, value = get(param, "name"), get(param, "value")
        if name in DURABILITY_PARAMETERS and value is not UNKNOWN:
            if str(value).strip().lower() not in DURABILITY_PARAMETERS[name]:
                problems.append(f"{name}={value} acknowledges commits a crash can lose; leave it on")
    return problems
