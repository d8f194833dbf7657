"""The artifact store on Docker: MinIO with a named volume and generated root credentials."""

from __future__ import annotations

import pulumi
import pulumi_docker as docker
import pulumi_random as random

from components.config.docker import DockerArtifactStoreSettings
from components.docker.common import LOG_OPTS, SECURITY_OPTS, env_list, healthcheck_args, secret_upload
from components.specs.endpoints import ArtifactEndpoint
from components.specs.minio import REGION, minio_config_env, minio_spec

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
        access_key = random.RandomPassword("access-key", random.RandomPasswordArgs(length=20, special=False),
                                           opts=random_opts)
        secret_key = random.RandomPassword("secret-key", random.RandomPasswordArgs(length=40, special=False),
                                           opts=random_opts)
        self.access_key = pulumi.Output.secret(access_key.result)
        self.secret_key = pulumi.Output.secret(secret_key.result)
        config_env = pulumi.Output.all(self.access_key, self.secret_key).apply(lambda keys: minio_config_env(*keys))

        image = docker.RemoteImage(
            "image", docker.RemoteImageArgs(name=spec.image, keep_locally=True),
            opts=pulumi.ResourceOptions(parent=self),
        )
        volume = docker.Volume(
            "data",
            docker.VolumeArgs(name=f"{prefix}-minio-data",
                              labels=[docker.VolumeLabelArgs(label="mlflow-platform.data", value="artifacts")]),
            opts=pulumi.ResourceOptions(parent=self, retain_on_delete=keep_data),
        )
        self.container = docker.Container(
            "minio",
            docker.ContainerArgs(
                name=f"{prefix}-minio",
                image=image.image_id,
                command=list(spec.command),
                envs=env_list(spec.env),
                uploads=[secret_upload(spec.config_env_file, config_env, owner=ROOT_UID)],
                volumes=[docker.ContainerVolumeArgs(volume_name=volume.name, container_path=spec.data_dir)],
                networks_advanced=[docker.ContainerNetworksAdvancedArgs(name=network.name, aliases=[HOST_ALIAS])],
                healthcheck=healthcheck_args(spec.health),
                wait=True,
                wait_timeout=120,
                restart="unless-stopped",
                security_opts=SECURITY_OPTS,
                log_opts=LOG_OPTS,
            ),
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.endpoint = ArtifactEndpoint(
            bucket=spec.bucket,
            region=REGION,
            s3_endpoint_url=f"http://{HOST_ALIAS}:{spec.port}",
            static_credentials=True,
            create_bucket=True,
        )
        self.register_outputs({"endpoint": self.endpoint.s3_endpoint_url, "bucket": spec.bucket,
                               "container": self.container.name, "volume": volume.name})
