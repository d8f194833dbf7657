"""The ECR repository (immutable tags, scan on push) and the MLflow image built and pushed into it."""

from __future__ import annotations

import json

import pulumi
import pulumi_aws as aws
import pulumi_docker as docker

from components.aws.providers import AwsContext
from components.image import FARGATE_PLATFORM, mlflow_image

KEEP_IMAGES = 30


class ImageRegistry(pulumi.ComponentResource):
    repository_arn: pulumi.Output[str]
    # repository@sha256:...: what the task definition runs, so a tag can never be swapped under it.
    image_digest: pulumi.Output[str]

    def __init__(self, name: str, ctx: AwsContext, opts: pulumi.ResourceOptions):
        super().__init__("mlflow-platform:aws:ImageRegistry", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        repository = aws.ecr.Repository(
            name,
            aws.ecr.RepositoryArgs(
                # Tags are `<mlflow version>-<build context hash>`: a pushed tag never changes meaning.
                image_tag_mutability="IMMUTABLE",
                image_scanning_configuration=aws.ecr.RepositoryImageScanningConfigurationArgs(scan_on_push=True),
                encryption_configurations=[aws.ecr.RepositoryEncryptionConfigurationArgs(encryption_type="AES256")],
                force_delete=False,
            ),
            opts=child,
        )
        aws.ecr.LifecyclePolicy(
            name,
            aws.ecr.LifecyclePolicyArgs(
                repository=repository.name,
                policy=json.dumps({
                    "rules": [{
                        "rulePriority": 1,
                        "description": f"keep the last {KEEP_IMAGES} images (rollbacks), expire older ones",
                        "selection": {"tagStatus": "any", "countType": "imageCountMoreThan", "countNumber": KEEP_IMAGES},
                        "action": {"type": "expire"},
                    }]
                }),  # fmt: skip
            ),
            opts=child,
        )
        token = aws.ecr.get_authorization_token_output(registry_id=repository.registry_id, opts=ctx.invoke(self))
        image = mlflow_image(
            f"{name}-mlflow",
            repository.repository_url,
            child,
            registry=docker.RegistryArgs(
                server=repository.repository_url,
                username=token.user_name,
                password=pulumi.Output.secret(token.password),
            ),
            platform=FARGATE_PLATFORM,
        )
        self.repository_arn = repository.arn
        self.repository_url = repository.repository_url
        self.image_digest = image.repo_digest
        self.register_outputs({"repositoryUrl": repository.repository_url, "image": self.image_digest})
