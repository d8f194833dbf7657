"""The ECR repository (immutable tags, scan on push) and the MLflow image built and pushed into it."""

from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_docker as docker
import pulumi_random as random

from components.aws.lib import kms
from components.aws.lib.providers import AwsContext
from components.image import FARGATE_PLATFORM, build_context_hash, mlflow_image

KEEP_IMAGES = 30
# Random bytes in each tag's suffix: 8 hex digits.
TAG_SUFFIX_BYTES = 4


@dataclass(frozen=True)
class ImageRegistryArgs:
    ctx: AwsContext


class ImageRegistry(pulumi.ComponentResource):
    repository_arn: pulumi.Output[str]
    # repository@sha256:...: what the task definition runs, so a tag can never be swapped under it.
    image_digest: pulumi.Output[str]

    def __init__(self, name: str, args: ImageRegistryArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("mlflow-platform:aws:ImageRegistry", name, None, opts)
        ctx = args.ctx
        child = pulumi.ResourceOptions(parent=self)
        images_key = kms.key(f"{name}-images", ctx, "images", "ECR images", child)
        repository = aws.ecr.Repository(
            name,
            aws.ecr.RepositoryArgs(
                # A pushed tag never changes meaning: every build gets a tag of its own (below).
                image_tag_mutability="IMMUTABLE",
                image_scanning_configuration=aws.ecr.RepositoryImageScanningConfigurationArgs(scan_on_push=True),
                # The images key. ECR fixes a repository's encryption at creation: a change replaces the
                # repository (and its images; `up` pushes the current one again). ECR uses the key through
                # grants it creates with the deployer's rights (kms:CreateGrant, through the account's
                # statement); the full key ARN, as ECR reads it back (no diff on the next preview).
                encryption_configurations=[
                    aws.ecr.RepositoryEncryptionConfigurationArgs(encryption_type="KMS", kms_key=images_key.arn)
                ],
                # `pulumi destroy` deletes the images with the repository: each is rebuilt from
                # images/mlflow by `pulumi up`, and nothing else pushes here (docs/aws.md, Destroying).
                force_delete=True,
            ),
            opts=child,
        )
        aws.ecr.LifecyclePolicy(
            name,
            aws.ecr.LifecyclePolicyArgs(
                repository=repository.name,
                policy=json.dumps(
                    {
                        "rules": [
                            {
                                "rulePriority": 1,
                                "description": f"keep the last {KEEP_IMAGES} images (rollbacks), expire older ones",
                                "selection": {
                                    "tagStatus": "any",
                                    "countType": "imageCountMoreThan",
                                    "countNumber": KEEP_IMAGES,
                                },
                                "action": {"type": "expire"},
                            }
                        ]
                    }
                ),  # fmt: skip
            ),
            opts=child,
        )
        # `<mlflow version>-<context hash>` alone can repeat: images/mlflow reverted to an earlier
        # content (that tag still in ECR), or the stack re-created without its state. With immutable
        # tags that push would fail. The suffix is drawn again whenever the context hash changes
        # (keepers) and kept in the state otherwise: an unchanged context reuses its tag (no build,
        # no push); a revert or a lost state draws a fresh one. (An `up` interrupted between push and
        # checkpoint keeps its saved suffix: `pulumi up --replace <this URN>`, docs/aws.md.)
        suffix = random.RandomId(
            f"{name}-tag",
            random.RandomIdArgs(byte_length=TAG_SUFFIX_BYTES, keepers={"buildContext": build_context_hash()}),
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
            tag_suffix=suffix.hex,
        )
        self.repository_arn = repository.arn
        self.repository_url = repository.repository_url
        self.image_digest = image.repo_digest
        self.register_outputs({"repositoryUrl": repository.repository_url, "image": self.image_digest})
