"""What the Docker stack's test files look up in a recorded run (conftest.py's `dev_run` and
the runs of other configs)."""

from __future__ import annotations

from tests.pulumi_mocks import ProgramRun, Resource, fake_secret_text

CONTAINER = "docker:index/container:Container"
PASSWORD = "random:index/randomPassword:RandomPassword"
VOLUME = "docker:index/volume:Volume"
# The containers, by resource name: `<component>-<service>`.
POSTGRES = "metadata-store-postgres"
MINIO = "artifact-store-minio"
SEAWEEDFS = "artifact-store-seaweedfs"
MLFLOW = "tracking-server-mlflow-0"
NGINX = "proxy-nginx"


def containers(run: ProgramRun) -> dict[str, Resource]:
    return {r.name: r for r in run.of_type(CONTAINER)}


def generated_value(resource: Resource) -> str:
    """What the mocks' random provider generated for a RandomPassword (pulumi_mocks.default_outputs)."""
    return fake_secret_text(resource.deployed_name, int(resource.inputs["length"]))


def children(run: ProgramRun, component: str) -> list[Resource]:
    """The resources registered under the component of that type token."""
    parent = run.one(component)
    return [r for r in run.resources if r.parent == parent.urn]
