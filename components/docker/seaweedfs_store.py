"""The artifact store on Docker, SeaweedFS flavour: `weed mini` (the end-to-end tests' S3 server)
with a named volume, generated SigV4 credentials and a generated KEK that encrypts every object."""

from __future__ import annotations

import pulumi

from components.docker.artifact_store import (
    ARTIFACT_STORE_TYPE,
    ArtifactStoreArgs,
    StoreMetrics,
    generated_encryption_key,
    generated_s3_keys,
    private_s3_endpoint,
    with_key_pair,
)
from components.docker.common import secret_upload, stateful_container
from components.specs.endpoints import ArtifactEndpoint
from components.specs.seaweedfs import METRICS_PATH, REGION, SSE_KEK_BYTES, s3_identities, seaweedfs_spec, security_toml

HOST_ALIAS = "seaweedfs"


class SeaweedfsArtifactStore(pulumi.ComponentResource):
    """The artifact store, SeaweedFS flavour (`artifactStore.engine: seaweedfs`).

    Same type token as MinioArtifactStore (`mlflow-platform:docker:ArtifactStore`: the role, not
    the engine), same args and same shape: exposes `endpoint`, `secrets` and `readiness`.
    """

    endpoint: ArtifactEndpoint
    secrets: dict[str, pulumi.Output[str]]
    """The contract's secret names -> values, for the tracking server: the S3 key pair."""
    readiness: list[pulumi.Resource]
    """What a client waits for: the container, created only once healthy."""
    metrics: StoreMetrics | None
    """Where Prometheus scrapes its series, bucket sizes among them (monitored), else None."""

    def __init__(self, name: str, args: ArtifactStoreArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__(ARTIFACT_STORE_TYPE, name, None, opts)
        spec = seaweedfs_spec(args.settings, monitored=args.monitored)
        self.secrets = generated_s3_keys(self, name)
        identities = with_key_pair(self.secrets, s3_identities)
        security = generated_encryption_key(self, name, SSE_KEK_BYTES).hex.apply(security_toml)
        container = stateful_container(
            self,
            name,
            service="seaweedfs",
            prefix=args.prefix,
            image=spec.image,
            data_path=spec.data_dir,
            keep_data=args.keep_data,
            network=args.network,
            alias=HOST_ALIAS,
            envs=[],
            entrypoints=list(spec.entrypoint),
            command=list(spec.command),
            uploads=[
                secret_upload(spec.identities_file, identities, owner=spec.file_owner),
                secret_upload(spec.security_file, security, owner=spec.file_owner),
            ],
            health=spec.health,
        )
        self.endpoint = private_s3_endpoint(spec.bucket, REGION, HOST_ALIAS, spec.port)
        self.metrics = StoreMetrics(f"{HOST_ALIAS}:{spec.metrics_port}", METRICS_PATH) if spec.metrics_port else None
        self.readiness = [container]
        self.register_outputs(
            {"endpoint": self.endpoint.s3_endpoint_url, "bucket": spec.bucket, "container": container.name}
        )
