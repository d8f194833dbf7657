"""The dev stack on Docker: one published port (the proxy), pinned images, secrets in files."""

from __future__ import annotations

import re

from .base import UNKNOWN, Res, as_list, get, items, number, resource_rule, secret_env_problem

CONTAINER = "docker:index/container:Container"
REMOTE_IMAGE = "docker:index/remoteImage:RemoteImage"
IMAGE = "docker:index/image:Image"
# The program's proxy component: its container is the only one that may publish a port, beside
# Grafana's (observability.enabled), which may publish on the loopback address only.
PROXY_COMPONENT = "mlflow-platform:docker:Proxy"
GRAFANA_COMPONENT = "mlflow-platform:docker:Grafana"
LOOPBACK = ("127.0.0.1", "::1")


def _in(urn: str, component: str) -> bool:
    # A URN names its ancestors' types: ...::mlflow-platform:docker:Platform$mlflow-platform:docker:Proxy$docker:...
    type_chain = urn.split("::")[2] if urn.count("::") >= 3 else ""
    return component in type_chain.split("$")


def _ports_text(ports: list) -> str:
    # Numbers arrive as floats over the wire (protobuf Struct): print 5000, not 5000.0.
    return ", ".join(f"{number(get(p, 'external', get(p, 'internal'))) or 0:g}" for p in ports)


@resource_rule(
    "docker-only-proxy-published",
    ["CIS Docker 5.8", "CIS Docker 5.13"],
    "Only the proxy container publishes a port on the host (and Grafana, on 127.0.0.1 only)",
    [CONTAINER],
)
def only_proxy_published(r: Res) -> list[str]:
    ports = items(r.get("ports"))
    if not ports or _in(r.urn, PROXY_COMPONENT):
        return []
    if _in(r.urn, GRAFANA_COMPONENT):
        # An address unknown during a preview is checked at `up`.
        beyond = [p for p in as_list(ports) if get(p, "ip") is not UNKNOWN and get(p, "ip") not in LOOPBACK]
        if not beyond:
            return []
        return [f"publishes {_ports_text(beyond)} beyond this machine: Grafana may publish on 127.0.0.1 only"]
    return [f"publishes {_ports_text(as_list(ports))}: only the proxy ({PROXY_COMPONENT}) may publish a port"]


def _unpinned(reference: str) -> str | None:
    """Why an image reference is not pinned, or None (a digest, an image id, or a tag other than latest)."""
    if reference.startswith("sha256:") or "@sha256:" in reference:
        return None
    last = reference.rsplit("/", 1)[-1]
    if ":" not in last:
        return f"image {reference!r} has no tag"
    if last.rsplit(":", 1)[1] == "latest":
        return f"image {reference!r} uses the moving tag 'latest'"
    return None


@resource_rule(
    "docker-images-pinned",
    ["CKV_K8S_14", "CKV_DOCKER_7"],
    "Images are pinned to a version tag or digest, never latest",
    [CONTAINER, REMOTE_IMAGE, IMAGE],
)
def images_pinned(r: Res) -> list[str]:
    key = {CONTAINER: "image", REMOTE_IMAGE: "name", IMAGE: "imageName"}[r.type]
    reference = r.get(key)
    if not isinstance(reference, str):
        return []
    problem = _unpinned(reference)
    return [problem] if problem else []


@resource_rule(
    "docker-no-secret-in-env",
    ["CKV_K8S_35"],
    "No secret in a container's plain environment (NAME_FILE pointing at a file instead)",
    [CONTAINER],
)
def no_secret_in_env(r: Res) -> list[str]:
    found = []
    for entry in items(r.get("envs")):
        if not isinstance(entry, str):
            continue
        name, _, value = entry.partition("=")
        problem = secret_env_problem(name, value)
        if problem:
            found.append(f"{problem}; mount it as a file and pass {name}_FILE")
    return found


@resource_rule("docker-not-privileged", ["CIS Docker 5.4", "CKV_K8S_16"], "Containers are not privileged", [CONTAINER])
def not_privileged(r: Res) -> list[str]:
    return ["privileged must not be true"] if r.get("privileged") is True else []


@resource_rule(
    "docker-no-new-privileges",
    ["CIS Docker 5.25", "CKV_K8S_20"],
    "Containers cannot gain privileges (no-new-privileges)",
    [CONTAINER],
)
def no_new_privileges(r: Res) -> list[str]:
    options = r.get("securityOpts")
    if options is UNKNOWN:
        return []
    if any(isinstance(o, str) and re.fullmatch(r"no-new-privileges(:true|=true)?", o) for o in items(options)):
        return []
    return ["securityOpts must include 'no-new-privileges:true'"]


@resource_rule(
    "docker-healthcheck", ["CIS Docker 5.26", "CIS Docker 4.6"], "Containers have a health check", [CONTAINER]
)
def healthcheck(r: Res) -> list[str]:
    tests = r.get("healthcheck.tests")
    if tests is UNKNOWN:
        return []
    if not tests or tests[0] == "NONE":
        return ["healthcheck.tests must define a health check"]
    return []


# The dev object store's encryption at rest. The pack runs in its own venv and imports nothing of
# the program: these names repeat components/specs (minio.py, seaweedfs.py) and the image's
# server_contract.py, and tests/policy/test_pack.py keeps them equal.
ARTIFACT_STORE_COMPONENT = "mlflow-platform:docker:ArtifactStore"
CREATE_BUCKET_ENV = "MLFLOW_BOOT_CREATE_BUCKET"
BUCKET_ENCRYPTION_ENV = "MLFLOW_BOOT_BUCKET_ENCRYPTION"
BUCKET_ENCRYPTIONS = ("AES256", "aws:kms")
MINIO_KMS_KEY_FILE_ENV = "MINIO_KMS_SECRET_KEY_FILE"
SEAWEEDFS_SECURITY_FILE = "/etc/seaweedfs/security.toml"


def _component_types(urn: str) -> list[str]:
    return (urn.split("::")[2] if urn.count("::") >= 3 else "").split("$")


def _envs(r: Res) -> dict[str, str]:
    return dict(e.partition("=")[::2] for e in items(r.get("envs")) if isinstance(e, str))


@resource_rule(
    "docker-object-store-encrypted",
    ["CKV_AWS_19", "FSBP S3.4"],
    "The dev object store encrypts every object at rest (bucket default SSE, the engine's key from a file)",
    [CONTAINER],
)
def object_store_encrypted(r: Res) -> list[str]:
    envs, uploads = r.get("envs"), r.get("uploads")
    if envs is UNKNOWN or uploads is UNKNOWN:
        return []
    env = _envs(r)
    found = []
    if CREATE_BUCKET_ENV in env and env.get(BUCKET_ENCRYPTION_ENV) not in BUCKET_ENCRYPTIONS:
        found.append(
            f"creates bucket {env[CREATE_BUCKET_ENV]!r} without a default encryption: set "
            f"{BUCKET_ENCRYPTION_ENV} to one of {', '.join(BUCKET_ENCRYPTIONS)}"
        )
    if ARTIFACT_STORE_COMPONENT in _component_types(r.urn):
        files = {get(u, "file") for u in items(uploads)}
        key_files = {env[MINIO_KMS_KEY_FILE_ENV]} if MINIO_KMS_KEY_FILE_ENV in env else {SEAWEEDFS_SECURITY_FILE}
        if not key_files & files:
            found.append(
                "the object store gets no encryption key file (MinIO: an upload at "
                f"{MINIO_KMS_KEY_FILE_ENV}; SeaweedFS: {SEAWEEDFS_SECURITY_FILE})"
            )
    return found
