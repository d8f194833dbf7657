"""AWS Backup of the metadata database and the artifact bucket: a vault under a key of its own,
a daily plan with the configured retention, an optional copy to a second region, and the role
AWS Backup reads and restores with.

On top of what the stores keep themselves (RDS automated backups with point-in-time recovery,
`database.backupRetentionDays`; S3 versioning with `artifactStore.noncurrentVersionExpirationDays`),
the vault keeps recovery points that outlive the instance and the bucket (a deleted instance's
automated backups go with it, a deleted object version is gone), under a retention of its own.
Restoring from either: docs/restore.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.aws.lib import kms
from components.aws.lib.policies import document
from components.aws.lib.providers import AwsContext
from components.config.aws import AwsBackupSettings

BACKUP = "backup.amazonaws.com"
# AWS's managed policies for a backup role (AWS Backup developer guide, "Managed policies for
# AWS Backup"): RDS and the other services under service-role/, S3's two at the top level.
# AWS Backup for S3 needs the S3 pair attached to the role it is given besides the general pair.
MANAGED_POLICIES = (
    "service-role/AWSBackupServiceRolePolicyForBackup",
    "service-role/AWSBackupServiceRolePolicyForRestores",
    "AWSBackupServiceRolePolicyForS3Backup",
    "AWSBackupServiceRolePolicyForS3Restore",
)
# A job that has not started within an hour of its scheduled time is cancelled (AWS's default
# is 8 h, which lets a backup drift into the working day); one that runs longer than a day fails.
START_WINDOW_MINUTES = 60
COMPLETION_WINDOW_MINUTES = 24 * 60


def backup_trust(ctx: AwsContext) -> pulumi.Output[str]:
    """AWS Backup, acting for this account (its confused-deputy guard: aws:SourceAccount; the
    source ARN is the backup vault or plan, which names the account too)."""
    return document(
        {
            "Sid": "AssumedByAwsBackup",
            "Effect": "Allow",
            "Principal": {"Service": BACKUP},
            "Action": "sts:AssumeRole",
            "Condition": {"StringEquals": {"aws:SourceAccount": ctx.account_id}},
        }
    )


def backup_role(name: str, ctx: AwsContext, opts: pulumi.ResourceOptions) -> aws.iam.Role:
    """The role AWS Backup backs up and restores the stack's resources with. Created before the
    bucket: its policy lets only the server and named roles touch objects, and this is one."""
    role = aws.iam.Role(
        name,
        aws.iam.RoleArgs(
            description="AWS Backup: back up and restore the MLflow database and artifact bucket",
            assume_role_policy=backup_trust(ctx),
            max_session_duration=3600,
        ),
        opts=opts,
    )
    for policy in MANAGED_POLICIES:
        aws.iam.RolePolicyAttachment(
            f"{name}-{policy.rsplit('/', 1)[-1].removeprefix('AWSBackupServiceRolePolicyFor').lower()}",
            aws.iam.RolePolicyAttachmentArgs(
                role=role.name, policy_arn=pulumi.Output.concat("arn:", ctx.partition, f":iam::aws:policy/{policy}")
            ),
            opts=opts,
        )
    return role


@dataclass(frozen=True)
class BackupPlanArgs:
    settings: AwsBackupSettings
    ctx: AwsContext
    # From backup_role(): its policies must be attached before a job runs, which the schedule's
    # first run (the next day at the earliest) leaves time for.
    role: aws.iam.Role
    # What is backed up: the RDS instance and the artifact bucket (versioned, as AWS Backup for S3 requires).
    resource_arns: list[pulumi.Input[str]]


class BackupPlan(pulumi.ComponentResource):
    vault_arn: pulumi.Output[str]
    plan_id: pulumi.Output[str]

    def __init__(self, name: str, args: BackupPlanArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlflow-platform:aws:BackupPlan", name, None, opts)
        settings, ctx = args.settings, args.ctx
        child = pulumi.ResourceOptions(parent=self)
        # AWS Backup encrypts recovery points of S3 (and of services without their own
        # encryption) with the vault's key, and uses it through grants made with the backup
        # role's rights: the account's IAM decides (its managed policy), no service statement.
        key = kms.key(f"{name}-key", ctx, "backup", "AWS Backup vault", child)
        vault = aws.backup.Vault(
            name,
            aws.backup.VaultArgs(kms_key_arn=key.arn, force_destroy=False),
            opts=child,
        )
        copy_actions = []
        if settings.copy_region is not None:
            # pulumi-aws 7 takes a region per resource: the copy's key and vault live there, under
            # the same provider (terraform-provider-aws 6, "enhanced region support").
            copy_key = kms.key(
                f"{name}-copy-key", ctx, "backup-copy", f"AWS Backup vault (copies from {ctx.region})", child,
                region=settings.copy_region,
            )  # fmt: skip
            copy_vault = aws.backup.Vault(
                f"{name}-copy",
                aws.backup.VaultArgs(kms_key_arn=copy_key.arn, force_destroy=False, region=settings.copy_region),
                opts=child,
            )
            copy_actions.append(
                aws.backup.PlanRuleCopyActionArgs(
                    destination_vault_arn=copy_vault.arn,
                    lifecycle=aws.backup.PlanRuleCopyActionLifecycleArgs(
                        delete_after=settings.copy_retention_days or settings.retention_days
                    ),
                )
            )
        plan = aws.backup.Plan(
            name,
            aws.backup.PlanArgs(
                rules=[
                    aws.backup.PlanRuleArgs(
                        rule_name="daily",
                        target_vault_name=vault.name,
                        schedule=settings.schedule,
                        schedule_expression_timezone="Etc/UTC",
                        start_window=START_WINDOW_MINUTES,
                        completion_window=COMPLETION_WINDOW_MINUTES,
                        lifecycle=aws.backup.PlanRuleLifecycleArgs(delete_after=settings.retention_days),
                        copy_actions=copy_actions,
                    )
                ]
            ),
            opts=child,
        )
        aws.backup.Selection(
            name,
            aws.backup.SelectionArgs(
                plan_id=plan.id,
                iam_role_arn=args.role.arn,
                resources=list(args.resource_arns),
            ),
            opts=child,
        )
        self.vault_arn = vault.arn
        self.plan_id = plan.id
        self.register_outputs({"vaultArn": vault.arn, "planId": plan.id})
