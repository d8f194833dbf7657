"""ImageRegistry: the ECR repository and the image built and pushed into it."""

from __future__ import annotations

import json

from components.image import build_context_hash, image_tag
from tests.mocks.prod_helpers import ACCOUNT, REGION, aws_outputs, container, run_prod, secret_paths


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


def test_destroy_cannot_delete_the_repository_with_its_images_unless_asked(prod_run):
    """force_delete is provider state only (no AWS call, no replacement when changed): off, a
    destroy fails on a repository that still holds images instead of deleting what tasks run."""
    assert prod_run.one("aws:ecr/repository:Repository").plain["forceDelete"] is False
    run = run_prod(registry={"forceDelete": True})
    assert run.one("aws:ecr/repository:Repository").plain["forceDelete"] is True


def test_enhanced_scanning_is_off_unless_asked_and_then_names_this_repository_only(prod_run):
    """The registry's scanning configuration is one per account and region and is replaced whole:
    its one rule names our repository (a unique, auto-named name), not a wildcard for all."""
    assert prod_run.of_type("aws:ecr/registryScanningConfiguration:RegistryScanningConfiguration") == []
    run = run_prod(registry={"enhancedScanning": True})
    config = run.one("aws:ecr/registryScanningConfiguration:RegistryScanningConfiguration")
    repository = run.one("aws:ecr/repository:Repository")
    assert config.parent == run.one("mlflow-platform:aws:ImageRegistry").urn
    (rule,) = config.plain["rules"]
    assert config.plain["scanType"] == "ENHANCED"
    assert rule["scanFrequency"] == "CONTINUOUS_SCAN"
    assert rule["repositoryFilters"] == [{"filter": repository.name, "filterType": "WILDCARD"}]
    assert "*" not in repository.name
    # The repository still asks for a scan on push: what basic scanning does once this is gone.
    assert repository.plain["imageScanningConfiguration"]["scanOnPush"] is True
