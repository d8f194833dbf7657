"""The artifact store on Docker: MinIO with a named volume, generated root credentials and a
generated KMS key that encrypts every object, and what both engines' stores share (their args,
their S3 keys, their encryption key, their endpoint)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pulumi
import pulumi_random as random

from components.config.docker import DockerArtifactStoreSettings
from components.docker.common import env_list, formerly, secret_upload, stateful_container
from components.generated import generated_key_bytes, generated_secret
from components.specs.endpoints import ArtifactEndpoint, private_s3_endpoint
from components.specs.minio import KMS_KEY_BYTES, REGION, minio_config_env, minio_kms_secret_key, minio_spec
from images.mlflow import server_contract as contract

# The type token of the role: one artifact store per stack, whichever engine runs it.
ARTIFACT_STORE_TYPE = "mlflow-platform:docker:ArtifactStore"
# The contract's S3 key names -> the child names the keys were deployed under (before the prefix).
S3_KEYS = {contract.S3_ACCESS_KEY_ID: "access-key", contract.S3_SECRET_ACCESS_KEY: "secret-key"}

HOST_ALIAS = "minio"
# MinIO runs as root in its image; the credentials file is for root only.
ROOT_UID = "0"


@dataclass(frozen=True)
class ArtifactStoreArgs:
    """What either engine's store takes (MinioArtifactStore, SeaweedfsArtifactStore): the platform
    builds one and picks the class from `settings.engine`."""

    settings: DockerArtifactStoreSettings
    """The bucket, the engine and its image (the stack's `artifactStore`)."""
    network: pulumi.Input[str]
    """The network it serves on, by name: the internal one the tracking server joins too."""
    prefix: str
    keep_data: bool
    """Names on the engine start with `prefix` (`<prefix>-minio`, `<prefix>-minio-data`); with
    `keep_data` the volume outlives `pulumi destroy`."""
    monitored: bool = False
    """observability.enabled: the engine serves its metrics (bucket sizes) to Prometheus."""


@dataclass(frozen=True)
class StoreMetrics:
    """Where Prometheus scrapes an artifact store: `host:port` on the backend network, and the path."""

    target: str
    path: str


def generated_s3_keys(parent: pulumi.Resource, name: str) -> dict[str, pulumi.Output[str]]:
    """`<name>-access-key` and `<name>-secret-key`, keyed by the contract's names: the static key
    pair the store is configured with and the tracking server signs with."""
    return {
        secret: generated_secret(
            f"{name}-{child}",
            contract.GENERATED_SECRET_LENGTHS[secret],
            pulumi.ResourceOptions(parent=parent, aliases=formerly(child)),
        )
        for secret, child in S3_KEYS.items()
    }


def generated_encryption_key(parent: pulumi.Resource, name: str, length: int) -> random.RandomBytes:
    """`<name>-sse-key`: the key the engine encrypts objects at rest with (MinIO's KMS key,
    SeaweedFS's KEK). Drawn once, never changed: a new value leaves every stored object unreadable.
    It lives only in the stack's state (encrypted) and the container's 0400 file, never on the data
    volume: back it up with the state (README.md, "The dev artifact store at rest")."""
    # The Docker rule for children (docs/architecture.md): it also answers to its short name.
    return generated_key_bytes(
        f"{name}-sse-key", length, pulumi.ResourceOptions(parent=parent, aliases=formerly("sse-key"))
    )


def with_key_pair(secrets: dict[str, pulumi.Output[str]], render: Callable[[str, str], str]) -> pulumi.Output[str]:
    """`render(access_key, secret_key)`: the store's credentials file, once both keys are known."""
    keys = pulumi.Output.all(secrets[contract.S3_ACCESS_KEY_ID], secrets[contract.S3_SECRET_ACCESS_KEY])
    return keys.apply(lambda pair: render(*pair))


class MinioArtifactStore(pulumi.ComponentResource):
    """The artifact store, MinIO flavour (`artifactStore.engine: minio`, the default).

    Its type token is the role's, `mlflow-platform:docker:ArtifactStore`, as is
    SeaweedfsArtifactStore's: a stack has one artifact store, and its URN does not say which
    engine runs it; the class name does. Exposes `endpoint`, `secrets` and `readiness`.
    """

    endpoint: ArtifactEndpoint
    secrets: dict[str, pulumi.Output[str]]
    """The contract's secret names -> values, for the tracking server: the S3 key pair."""
    readiness: list[pulumi.Resource]
    """What a client waits for: the container, created only once healthy (depending on the whole
    component would also wait for its image and volume, and record them as dependencies)."""
    metrics: StoreMetrics | None
    """Where Prometheus scrapes its bucket metrics (monitored), else None."""

    def __init__(self, name: str, args: ArtifactStoreArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(ARTIFACT_STORE_TYPE, name, None, opts)
        spec = minio_spec(args.settings, monitored=args.monitored)
        self.secrets = generated_s3_keys(self, name)
        config_env = with_key_pair(self.secrets, minio_config_env)
        kms_key = generated_encryption_key(self, name, KMS_KEY_BYTES).base64.apply(minio_kms_secret_key)
        container = stateful_container(
            self,
            name,
            service="minio",
            prefix=args.prefix,
            image=spec.image,
            data_path=spec.data_dir,
            keep_data=args.keep_data,
            network=args.network,
            alias=HOST_ALIAS,
            envs=env_list(spec.env),
            command=list(spec.command),
            uploads=[
                secret_upload(spec.config_env_file, config_env, owner=ROOT_UID),
                secret_upload(spec.kms_secret_key_file, kms_key, owner=ROOT_UID),
            ],
            health=spec.health,
        )
        self.endpoint = private_s3_endpoint(spec.bucket, REGION, HOST_ALIAS, spec.port)
        self.metrics = StoreMetrics(f"{HOST_ALIAS}:{spec.port}", spec.metrics_path) if spec.metrics_path else None
        self.readiness = [container]
        self.register_outputs(
            {"endpoint": self.endpoint.s3_endpoint_url, "bucket": spec.bucket, "container": container.name}
        )
