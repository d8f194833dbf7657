"""What the Docker stack's test files look up in a recorded run (conftest.py's `dev_run` and
the runs of other configs)."""

from __future__ import annotations

from tests.pulumi_mocks import ProgramRun, Resource, generated_value  # noqa: F401 (re-exported)

CONTAINER = "docker:index/container:Container"
PASSWORD = "random:index/randomPassword:RandomPassword"
VOLUME = "docker:index/volume:Volume"
# The containers, by resource name: `<component>-<service>`.
POSTGRES = "metadata-store-postgres"
MINIO = "artifact-store-minio"
SEAWEEDFS = "artifact-store-seaweedfs"
MLFLOW = "tracking-server-mlflow-0"
NGINX = "proxy-nginx"
REDIS = "job-queue-redis"


def containers(run: ProgramRun) -> dict[str, Resource]:
    return {r.name: r for r in run.of_type(CONTAINER)}


def children(run: ProgramRun, component: str) -> list[Resource]:
    """The resources registered under the component of that type token."""
    parent = run.one(component)
    return [r for r in run.resources if r.parent == parent.urn]
