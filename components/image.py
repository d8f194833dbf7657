"""The images this repo builds: MLflow's (images/mlflow, both targets) and, on the dev stack with
observability on, mtail's (images/mtail).

A tag carries the version and a hash of the build context (and build args), so a change to the
Dockerfile, the boot module or the locked requirements gives a new tag and a rolled deployment,
and an unchanged context never rebuilds into a new container.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path

import pulumi
import pulumi_docker as docker

from components.versions import (
    MLFLOW_IMAGE_DIR,
    MTAIL_BASE_IMAGE,
    MTAIL_DEBIAN_VERSION,
    MTAIL_IMAGE_DIR,
    REPO_ROOT,
    pinned_mlflow_version,
)

# Fargate's default CPU architecture. The dev stack builds for its engine's platform (components/docker/engine.py).
FARGATE_PLATFORM = "linux/amd64"
# Relative to the project directory, where Pulumi runs the program and the provider: an absolute
# path would differ between a laptop and CI (or after a rename), and a changed context input
# rebuilds and pushes the same tag again, which an IMMUTABLE repository refuses.
BUILD_CONTEXT = MLFLOW_IMAGE_DIR.relative_to(REPO_ROOT).as_posix()
MTAIL_BUILD_CONTEXT = MTAIL_IMAGE_DIR.relative_to(REPO_ROOT).as_posix()
# The Dockerfile's ARGs: the pins live in components/versions.py only.
MTAIL_BUILD_ARGS = {"BASE_IMAGE": MTAIL_BASE_IMAGE, "MTAIL_VERSION": MTAIL_DEBIAN_VERSION}


def build_context_hash(directory: Path = MLFLOW_IMAGE_DIR, build_args: Mapping[str, str] | None = None) -> str:
    """sha256 over the files of a build context (names and contents) and its build args, first
    12 hex digits."""
    digest = hashlib.sha256()
    for path in sorted(p for p in directory.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
        digest.update(path.relative_to(directory).as_posix().encode())
        digest.update(b"\0")
        digest.update(path.read_bytes())
    for key, value in sorted((build_args or {}).items()):
        digest.update(f"\0{key}={value}".encode())
    return digest.hexdigest()[:12]


def image_tag() -> str:
    return f"{pinned_mlflow_version()}-{build_context_hash()}"


def mtail_image_tag() -> str:
    """Debian's package version, in the characters a tag allows ('~' and '+' are not), and the hash."""
    version = MTAIL_DEBIAN_VERSION.replace("~", "-").replace("+", "-")
    return f"{version}-{build_context_hash(MTAIL_IMAGE_DIR, MTAIL_BUILD_ARGS)}"


def _built_image(
    name: str,
    image_name: pulumi.Input[str],
    context: str,
    opts: pulumi.ResourceOptions,
    *,
    args: Mapping[str, str] | None = None,
    platform: str | None = None,
    registry: docker.RegistryArgs | None = None,
) -> docker.Image:
    """Build `<context>/Dockerfile` as image_name; push it only given a registry."""
    return docker.Image(
        name,
        docker.ImageArgs(
            image_name=image_name,
            build=docker.DockerBuildArgs(
                context=context,
                dockerfile=f"{context}/Dockerfile",
                args=dict(args) if args is not None else None,
                platform=platform,
                # BuildKit: the MLflow Dockerfile uses `ADD --chmod`.
                builder_version=docker.BuilderVersion.BUILDER_BUILD_KIT,
            ),
            registry=registry,
            # Local Docker: nothing to push to. ECR: push.
            skip_push=registry is None,
        ),
        opts=opts,
    )


def mtail_image(name: str, opts: pulumi.ResourceOptions, platform: str | None = None) -> docker.Image:
    """Build images/mtail on the dev stack's engine (nothing to push): `mlflow-platform/mtail:<tag>`."""
    image_name = f"mlflow-platform/mtail:{mtail_image_tag()}"
    return _built_image(name, image_name, MTAIL_BUILD_CONTEXT, opts, args=MTAIL_BUILD_ARGS, platform=platform)


def mlflow_image(
    name: str,
    repository: pulumi.Input[str],
    opts: pulumi.ResourceOptions,
    registry: docker.RegistryArgs | None = None,
    platform: str | None = None,
    tag_suffix: pulumi.Input[str] | None = None,
) -> docker.Image:
    """Build (and, given a registry, push) the image as `<repository>:<tag>`, or
    `<repository>:<tag>-<tag_suffix>` given a suffix (a registry with immutable tags)."""
    tag = image_tag()
    image_name = pulumi.Output.from_input(repository).apply(lambda repo: f"{repo}:{tag}")
    if tag_suffix is not None:
        image_name = pulumi.Output.concat(image_name, "-", tag_suffix)
    return _built_image(name, image_name, BUILD_CONTEXT, opts, platform=platform, registry=registry)
