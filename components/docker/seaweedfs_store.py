"""The artifact store on Docker, SeaweedFS flavour: `weed mini` (the end-to-end tests' S3 server)
with a named volume and generated SigV4 credentials."""

from __future__ import annotations

import pulumi
import pulumi_docker as docker
import pulumi_random as random

from components.config.docker import DockerArtifactStoreSettings
from components.docker.common import secret_upload, stateful_container
from components.generated import generated_secret
from images.mlflow import server_contract as contract
from components.specs.endpoints import ArtifactEndpoint
from components.specs.seaweedfs import REGION, s3_identities, seaweedfs_spec

LENGTHS = contract.GENERATED_SECRET_LENGTHS

HOST_ALIAS = "seaweedfs"


class SeaweedfsStore(pulumi.ComponentResource):
    """Same shape as MinioStore: exposes `endpoint`, the secret `access_key` / `secret_key` and
    `container`.

    The bucket is created by the tracking server at boot (see mlflow_boot.ensure_bucket),
    with no bucket policy: private, never anonymous download.
    """

    endpoint: ArtifactEndpoint
    access_key: pulumi.Output[str]
    secret_key: pulumi.Output[str]
    container: docker.Container

    def __init__(
        self,
        name: str,
        settings: DockerArtifactStoreSettings,
        *,
        prefix: str,
        network: docker.Network,
        keep_data: bool,
        random_provider: random.Provider,
        opts: pulumi.ResourceOptions | None = None,
    ):
        super().__init__("mlflow-platform:docker:ArtifactStore", name, None, opts)
        spec = seaweedfs_spec(settings)
        random_opts = pulumi.ResourceOptions(parent=self, provider=random_provider)
        self.access_key = generated_secret("access-key", LENGTHS[contract.S3_ACCESS_KEY_ID], random_opts)
        self.secret_key = generated_secret("secret-key", LENGTHS[contract.S3_SECRET_ACCESS_KEY], random_opts)
        identities = pulumi.Output.all(self.access_key, self.secret_key).apply(lambda keys: s3_identities(*keys))
        self.container = stateful_container(
            self, name="seaweedfs", prefix=prefix, image=spec.image, data_path=spec.data_dir, keep_data=keep_data,
            network=network, alias=HOST_ALIAS, envs=[], entrypoints=list(spec.entrypoint),
            command=list(spec.command),
            uploads=[secret_upload(spec.identities_file, identities, owner=spec.file_owner)],
            health=spec.health,
        )
        self.endpoint = ArtifactEndpoint(
            bucket=spec.bucket,
            region=REGION,
            s3_endpoint_url=f"http://{HOST_ALIAS}:{spec.port}",
            static_credentials=True,
            create_bucket=True,
            reachable_by_clients=False,
        )
        self.register_outputs({"endpoint": self.endpoint.s3_endpoint_url, "bucket": spec.bucket,
                               "container": self.container.name})
