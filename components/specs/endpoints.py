"""What the stores expose to the tracking server: an address and names, never their insides."""

from __future__ import annotations

import urllib.parse
from dataclasses import dataclass

from images.mlflow import server_contract as contract


@dataclass(frozen=True)
class DatabaseEndpoint:
    host: str
    port: int
    name: str
    # The role the servers sign in as (contract.SERVER_DB_ROLE on both stacks: no DDL)...
    user: str
    # libpq sslmode: "disable" on the private Docker network, "verify-full" against RDS.
    sslmode: str = "disable"
    sslrootcert: str | None = None
    # ...and the role that owns the schema, used only by the boot step (migrations, the server's
    # role and its grants). None: the servers sign in as the owner (tools, not the stacks).
    owner: str | None = None
    # The metrics exporter's role (contract.MONITOR_DB_ROLE), which the boot step creates as the
    # owner where the stack runs an exporter; None: no exporter role.
    monitor: str | None = None


@dataclass(frozen=True)
class ArtifactEndpoint:
    bucket: str
    region: str = "us-east-1"
    # Set for MinIO (and the e2e S3 server); None means AWS S3 itself.
    s3_endpoint_url: str | None = None
    # True where the server holds static S3 keys (MinIO); False where a role grants access.
    static_credentials: bool = False
    # True where nothing else creates the bucket (MinIO): the server creates it at boot.
    create_bucket: bool = False
    # The default encryption the server sets on that bucket at boot (contract.SSE_S3), where
    # nothing else configures the bucket (the dev stores); None where the program does (AWS).
    bucket_encryption: str | None = None
    # Whether MLflow's clients can reach `s3_endpoint_url` themselves (presigned transfers):
    # not the dev stack's http://minio:9000, which only the containers resolve.
    reachable_by_clients: bool = True

    @property
    def root(self) -> str:
        return f"s3://{self.bucket}/"


@dataclass(frozen=True)
class JobQueueEndpoint:
    """Where the server jobs' Redis queue is: the dev container, ElastiCache, or the e2e kit's."""

    host: str
    port: int
    # rediss:// (ElastiCache, TLS in transit) or redis:// (the private Docker network).
    tls: bool = False
    database: int = 0

    def url(self, password: str) -> str:
        """What MLflow is given as contract.JOB_REDIS_URL: the default user signs in with
        `password` (Redis AUTH / the ElastiCache auth token). A secret, as a whole."""
        scheme = "rediss" if self.tls else "redis"
        return f"{scheme}://:{urllib.parse.quote(password, safe='')}@{self.host}:{self.port}/{self.database}"


def platform_database(host: str, port: int, name: str, owner: str, *, sslmode: str = "disable",
                      sslrootcert: str | None = None, monitored: bool = False) -> DatabaseEndpoint:  # fmt: skip
    """The platform's database as every stack hands it to the servers: they sign in as
    contract.SERVER_DB_ROLE, and only their boot step as `owner` (the superuser / master user).
    `monitored`: their boot step also creates the metrics exporter's contract.MONITOR_DB_ROLE."""
    return DatabaseEndpoint(host=host, port=port, name=name, user=contract.SERVER_DB_ROLE, owner=owner,
                            sslmode=sslmode, sslrootcert=sslrootcert,
                            monitor=contract.MONITOR_DB_ROLE if monitored else None)  # fmt: skip


def private_s3_endpoint(bucket: str, region: str, host: str, port: int) -> ArtifactEndpoint:
    """An S3 server on the backend network: static keys, a bucket the tracking server creates at
    boot (see mlflow_boot.ensure_bucket, no bucket policy: private, never anonymous download) and
    sets to encrypt every object with SSE-S3 (the store's own key), and an address only the
    containers resolve, so clients get no presigned transfers. Both Docker engines serve it, and
    the end-to-end kit (testkit/topology.py) at its local address."""
    return ArtifactEndpoint(
        bucket=bucket,
        region=region,
        s3_endpoint_url=f"http://{host}:{port}",
        static_credentials=True,
        create_bucket=True,
        bucket_encryption=contract.SSE_S3,
        reachable_by_clients=False,
    )
