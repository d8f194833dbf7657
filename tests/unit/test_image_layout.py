"""The Dockerfile agrees with components/specs/image_layout.py, which the stacks rely on."""

from __future__ import annotations

import re

from components.config import parse_settings
from components.specs.endpoints import ArtifactEndpoint, DatabaseEndpoint, JobQueueEndpoint
from components.specs.image_layout import IMAGE_UID, RDS_CA_BUNDLE_PATH, SCRATCH_DIR
from components.specs.mlflow_server import mlflow_server_spec
from components.versions import MLFLOW_IMAGE_DIR

# The shared job queue every spec with tracking.jobExecution (the default) needs.
QUEUE = JobQueueEndpoint("redis", 6379)

DOCKERFILE = (MLFLOW_IMAGE_DIR / "Dockerfile").read_text()


def instructions(name: str) -> list[str]:
    return [line[len(name) + 1 :].strip() for line in DOCKERFILE.splitlines() if line.startswith(name + " ")]


def test_runs_as_the_fixed_non_root_uid():
    assert instructions("USER") == [f"{IMAGE_UID}:{IMAGE_UID}"]
    assert f"--uid {IMAGE_UID}" in DOCKERFILE


def test_scratch_is_a_volume_owned_by_the_image_user_and_the_spec_uses_it():
    assert instructions("VOLUME") == [f'["{SCRATCH_DIR}"]']
    assert re.search(rf"chown {IMAGE_UID}:{IMAGE_UID} {SCRATCH_DIR}\b", DOCKERFILE)
    spec = mlflow_server_spec(
        parse_settings({"target": "docker"}).tracking,
        DatabaseEndpoint("db", 5432, "mlflow", "mlflow"),
        ArtifactEndpoint("b"),
        job_queue=QUEUE,
    )
    assert spec.scratch_dir == SCRATCH_DIR
    assert spec.env["TMPDIR"] == SCRATCH_DIR and spec.env["HOME"] == SCRATCH_DIR


def test_ships_the_rds_ca_bundle_readable_by_the_image_user():
    (add,) = [line for line in instructions("ADD") if RDS_CA_BUNDLE_PATH in line]
    # ADD from a URL defaults to 0600 root: the non-root user could not read it.
    assert "--chmod=0644" in add
    assert add.split()[-2].startswith("https://")


def test_installs_exactly_the_locked_closure():
    (run,) = [line for line in instructions("RUN") if "pip install" in line]
    assert "--no-deps -r /app/requirements.txt" in run
    assert instructions("ENTRYPOINT") == ['["python", "-m", "mlflow_boot"]']
