"""The artifact store on Docker: MinIO with a named volume and generated root credentials."""

from __future__ import annotations

import pulumi
import pulumi_docker as docker
import pulumi_random as random

from components.config.docker import DockerArtifactStoreSettings
from components.generated import generated_secret
from images.mlflow import server_contract as contract
from components.docker.common import env_list, secret_upload, stateful_container
from components.specs.endpoints import ArtifactEndpoint
from components.specs.minio import REGION, minio_config_env, minio_spec

LENGTHS = contract.GENERATED_SECRET_LENGTHS

HOST_ALIAS = "minio"
# MinIO runs as root in its image; the credentials file is for root only.
ROOT_UID = "0"


class MinioStore(pulumi.ComponentResource):
    """Exposes `endpoint` and the secret `access_key` / `secret_key`.

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
        spec = minio_spec(settings)
        random_opts = pulumi.ResourceOptions(parent=self, provider=random_provider)
        self.access_key = generated_secret("access-key", LENGTHS[contract.S3_ACCESS_KEY_ID], random_opts)
        self.secret_key = generated_secret("secret-key", LENGTHS[contract.S3_SECRET_ACCESS_KEY], random_opts)
        config_env = pulumi.Output.all(self.access_key, self.secret_key).apply(lambda keys: minio_config_env(*keys))
        self.container = stateful_container(
            self, name="minio", prefix=prefix, image=spec.image, data_path=spec.data_dir, keep_data=keep_data,
            network=network, alias=HOST_ALIAS, envs=env_list(spec.env), command=list(spec.command),
            uploads=[secret_upload(spec.config_env_file, config_env, owner=ROOT_UID)],
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
