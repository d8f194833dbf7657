"""The server jobs' queue on AWS: ElastiCache for Valkey in the private subnets, TLS in transit,
encrypted at rest under a key of its own, an auth token kept in Secrets Manager.

What the provider does with each input (terraform-provider-aws, internal/service/elasticache/
replication_group.go), and so what is written here:
- `replication_group_id`, `subnet_group_name`, `port`, `at_rest_encryption_enabled`, `kms_key_id`
  and `network_type` force a new group (a new, empty queue and a new endpoint): all fixed here.
- The id and the maintenance window are stored lowercased (StateFunc): written lowercase, or every
  preview would show a change. The engine version is read back as <major>.<minor>.
- AWS refuses on create: an auth token without TLS in transit, of fewer than 16 or more than 128
  characters or with `@`, `"` or `/`; a KMS key without encryption at rest; automatic failover
  with fewer than 2 nodes, and Multi-AZ without automatic failover.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from components.aws.lib.providers import AwsContext
from components.aws.lib.secrets import SecretRef, contract_secret
from components.config.aws import AwsJobQueueSettings
from components.generated import generated_secret
from components.specs.endpoints import JobQueueEndpoint
from components.specs.redis import PORT
from components.versions import VALKEY_ENGINE, VALKEY_VERSION
from images.mlflow import server_contract as contract

# ElastiCache's auth token rules (16-128 characters; letters and digits are always allowed).
AUTH_TOKEN_LENGTH = 64
URL_KEY = "job_queue_url"
# Lowercase, as ElastiCache stores it (ddd:hh24:mi-ddd:hh24:mi, UTC); after the database's window.
MAINTENANCE_WINDOW = "sun:05:00-sun:06:00"
SNAPSHOT_WINDOW = "03:00-04:00"
# ElastiCache's rule for replication group ids: a letter, then letters, digits and single hyphens,
# at most 40 characters, not ending in a hyphen.
_GROUP_ID = re.compile(r"[a-z](?:-?[a-z0-9])*")


def replication_group_id(stack: str) -> str:
    """`mlflow-<stack>-jobs`, lowercase (the provider stores ids lowercased); refused when AWS would."""
    group_id = f"mlflow-{stack}-jobs".lower()
    if len(group_id) > 40 or not _GROUP_ID.fullmatch(group_id):
        raise ValueError(f"{group_id!r} is not an ElastiCache replication group id (a letter, then letters, "
                         "digits and single hyphens, at most 40): use a shorter stack name")  # fmt: skip
    return group_id


@dataclass(frozen=True)
class JobQueueArgs:
    settings: AwsJobQueueSettings
    ctx: AwsContext
    # Private subnets, in at least two zones (the primary and a replica in different ones).
    subnet_ids: Sequence[pulumi.Input[str]]
    # The cache's own group: the queue's port from the tasks only (components/aws/security_groups.py).
    security_group_id: pulumi.Input[str]
    # Encrypts the nodes' data and snapshots at rest.
    storage_key_arn: pulumi.Input[str]
    # Encrypts the secret holding the queue's URL.
    secrets_key_arn: pulumi.Input[str]


class JobQueue(pulumi.ComponentResource):
    """Store-like: exposes `secrets` (contract.JOB_REDIS_URL, whose value carries the auth token)."""

    secrets: dict[str, SecretRef]
    endpoint: pulumi.Output[JobQueueEndpoint]
    replication_group_arn: pulumi.Output[str]

    def __init__(self, name: str, args: JobQueueArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlflow-platform:aws:JobQueue", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        group_id = replication_group_id(args.ctx.stack)
        subnets = aws.elasticache.SubnetGroup(
            name,
            aws.elasticache.SubnetGroupArgs(
                name=group_id, description="MLflow job queue: private subnets", subnet_ids=list(args.subnet_ids)
            ),
            opts=child,
        )
        token = generated_secret(f"{name}-auth-token", AUTH_TOKEN_LENGTH, child)
        settings = args.settings
        group = aws.elasticache.ReplicationGroup(
            name,
            aws.elasticache.ReplicationGroupArgs(
                replication_group_id=group_id,
                description="MLflow server jobs queue (Huey)",
                engine=VALKEY_ENGINE,
                engine_version=VALKEY_VERSION,
                node_type=settings.node_type,
                num_cache_clusters=settings.nodes,
                automatic_failover_enabled=True,
                multi_az_enabled=True,
                port=PORT,
                subnet_group_name=subnets.name,
                security_group_ids=[args.security_group_id],
                # TLS only: "preferred" would also accept plaintext connections.
                transit_encryption_enabled=True,
                transit_encryption_mode="required",
                auth_token=token,
                at_rest_encryption_enabled=True,
                kms_key_id=args.storage_key_arn,
                auto_minor_version_upgrade=True,
                maintenance_window=MAINTENANCE_WINDOW,
                snapshot_window=SNAPSHOT_WINDOW,
                snapshot_retention_limit=1,
                # Changes wait for the maintenance window: a node type change restarts nodes.
                apply_immediately=False,
            ),
            opts=pulumi.ResourceOptions(parent=self, additional_secret_outputs=["authToken"]),
        )
        endpoint = group.primary_endpoint_address.apply(lambda host: JobQueueEndpoint(host=host, port=PORT, tls=True))
        url: pulumi.Output[str] = pulumi.Output.secret(
            pulumi.Output.all(endpoint, token).apply(lambda values: str(values[0].url(values[1])))
        )
        secret, self.secrets = contract_secret(
            name, "MLflow job queue URL (rediss://, auth token included)", {contract.JOB_REDIS_URL: (URL_KEY, url)},
            args.secrets_key_arn, child,
        )  # fmt: skip
        self.endpoint = endpoint
        self.replication_group_arn = group.arn
        self.register_outputs({"replicationGroup": group.id, "secretArn": secret.arn})
