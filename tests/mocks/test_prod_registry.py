"""ImageRegistry: the ECR repository and the image built and pushed into it."""

from __future__ import annotations

import json

from components.image import build_context_hash, image_tag
from tests.mocks.prod_helpers import ACCOUNT, REGION, aws_outputs, container, secret_paths


def test_ecr_repository_scans_on_push_and_has_immutable_tags(prod_run):
    repo = prod_run.one("aws:ecr/repository:Repository").plain
    assert repo["imageTagMutability"] == "IMMUTABLE"
    assert repo["imageScanningConfiguration"]["scanOnPush"] is True


def test_ecr_keeps_the_last_30_images_for_rollbacks(prod_run):
    policy = json.loads(prod_run.one("aws:ecr/lifecyclePolicy:LifecyclePolicy").plain["policy"])
    (rule,) = policy["rules"]
    assert rule["selection"]["countType"] == "imageCountMoreThan"
    assert rule["selection"]["countNumber"] == 30
    assert rule["action"]["type"] == "expire"


def test_every_build_gets_its_own_tag_kept_while_the_build_context_is_unchanged(prod_run):
    """Immutable tags and `<version>-<context hash>` repeat on a revert or a lost state: a random
    suffix, drawn again whenever the context hash changes and otherwise kept in the state."""
    suffix = prod_run.one("random:index/randomId:RandomId")
    assert suffix.parent == prod_run.one("mlflow-platform:aws:ImageRegistry").urn
    assert "$pulumi:providers:random::mlflow-prod-random::" in suffix.provider
    assert suffix.plain["keepers"] == {"buildContext": build_context_hash()}
    assert suffix.plain["byteLength"] == 4
    image = prod_run.one("docker:index/image:Image")
    drawn = aws_outputs(suffix.typ, suffix.name, suffix.inputs)["hex"]
    repository_url = f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/{prod_run.one('aws:ecr/repository:Repository').name}"
    assert image.plain["imageName"] == f"{repository_url}:{image_tag()}-{drawn}"
    assert prod_run.depends_on(image, suffix)
    # The task still runs the pushed digest, never the tag.
    assert container(prod_run)["image"] == f"{repository_url}@sha256:{'ab' * 32}"


def test_image_is_built_for_fargate_and_pushed_with_a_secret_token(prod_run):
    image = prod_run.one("docker:index/image:Image")
    plain = image.plain
    assert plain["build"]["platform"] == "linux/amd64"
    assert plain["imageName"].startswith(f"{ACCOUNT}.dkr.ecr.{REGION}.amazonaws.com/")
    assert plain["skipPush"] is False
    # The ECR token keeps the registry block secret as a whole.
    assert secret_paths(image.inputs) == ["registry"]
    assert plain["registry"]["server"] == plain["imageName"].split(":")[0]
