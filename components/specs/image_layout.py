"""Facts about the MLflow image (images/mlflow/Dockerfile) that the stacks rely on.

One place for them; tests/unit/test_image_layout.py checks the Dockerfile agrees.
"""

# The non-root user the image runs as (Docker `user`, ECS `user`, upload owners).
IMAGE_UID = "10001"
# A VOLUME owned by IMAGE_UID: writable with a read-only root filesystem. On Fargate a task
# volume is root-owned 0755 unless the image declares a VOLUME at the same path, whose
# ownership ECS then copies; so the spec's scratch dir must be exactly this path.
SCRATCH_DIR = "/scratch"
# Amazon RDS's CA bundle (MLFLOW_DB_SSLROOTCERT on AWS: sslmode=verify-full).
RDS_CA_BUNDLE_PATH = "/etc/ssl/certs/rds-global-bundle.pem"
# Debian's ca-certificates bundle (in the python:*-slim base image): it holds the Amazon Root CAs
# that sign RDS Proxy's certificates (ACM), which the RDS bundle above does not.
SYSTEM_CA_BUNDLE_PATH = "/etc/ssl/certs/ca-certificates.crt"
