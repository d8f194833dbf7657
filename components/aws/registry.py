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
from components.config.aws import AwsRegistrySettings
from components.image import FARGATE_PLATFORM, build_context_hash, mlflow_image

KEEP_IMAGES = 30
# Random bytes in each tag's suffix: 8 hex digits.
TAG_SUFFIX_BYTES = 4


@dataclass(frozen=True)
class ImageRegistryArgs:
    ctx: AwsContext
    settings: AwsRegistrySettings


class ImageRegistry(pulumi.ComponentResource):
    repository_arn: pulumi.Output[str]
    # repository@sha256:...: what the task definition runs, so a tag can never be swapped under it.
    image_digest: pulumi.Output[str]
    build_resources: list[pulumi.Resource]

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
                # Off: a destroy (or a replacement) cannot take the images that tasks run, and their
                # scan findings, with it; destroy then fails on a non-empty repository until the
                # images are deleted or forceDelete is applied (docs/aws.md, Destroying). Changing
                # it is an in-place update of the provider's state: no AWS call, no replacement.
                force_delete=args.settings.force_delete,
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
        if args.settings.enhanced_scanning:
            enhanced_scanning(name, repository.name, child)
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
        # What builds and pushes a new image: a deploy can update these alone (`pulumi up --target`).
        self.build_resources: list[pulumi.Resource] = [suffix, image]
        self.register_outputs({"repositoryUrl": repository.repository_url, "image": self.image_digest})


def enhanced_scanning(name: str, repository_name: pulumi.Input[str], opts: pulumi.ResourceOptions) -> None:
    """Amazon Inspector scans the repository continuously (and on push), not ECR's basic scan.

    The registry's scanning configuration is one per account and region: PutRegistryScanningConfiguration
    replaces every rule of it, and deleting this resource puts BASIC with no rules back
    (terraform-provider-aws registry_scanning_configuration.go). Under ENHANCED, a repository no rule
    matches is not scanned at all. So the rule names this repository only: a filter without a
    wildcard matches every repository whose name contains it, and ours ends in a unique suffix.
    """
    aws.ecr.RegistryScanningConfiguration(
        name,
        aws.ecr.RegistryScanningConfigurationArgs(
            scan_type="ENHANCED",
            rules=[
                aws.ecr.RegistryScanningConfigurationRuleArgs(
                    scan_frequency="CONTINUOUS_SCAN",
                    repository_filters=[
                        aws.ecr.RegistryScanningConfigurationRuleRepositoryFilterArgs(
                            filter=repository_name, filter_type="WILDCARD"
                        )
                    ],
                )
            ],
        ),
        opts=opts,
    )
