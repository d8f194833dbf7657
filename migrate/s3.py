"""S3 plumbing shared by the source download and the artifact copy: s3:// URLs, the client,
and what an S3 failure means in words a user can act on."""

from __future__ import annotations

from urllib.parse import urlparse

from migrate.errors import MigrationError


def split_s3_url(url: str) -> tuple[str, str]:
    """s3://bucket/key -> (bucket, key); a MigrationError for anything else."""
    parsed = urlparse(url)
    if parsed.scheme != "s3" or not parsed.netloc:
        raise MigrationError(f"expected s3://bucket/key, got {url!r}")
    return parsed.netloc, parsed.path.lstrip("/")


def s3_client(endpoint_url: str | None, workers: int = 8):
    import boto3
    from botocore.config import Config

    config = Config(
        max_pool_connections=max(10, workers * 2),
        retries={"max_attempts": 5, "mode": "standard"},
        # S3-compatible servers (MinIO, SeaweedFS) want path-style; AWS decides by itself.
        s3={"addressing_style": "path"} if endpoint_url else {},
    )
    return boto3.session.Session().client("s3", endpoint_url=endpoint_url, config=config)


def s3_problem(error: Exception, bucket: str) -> str:
    """A boto3/botocore error on `bucket` as one sentence (missing bucket, denied, no credentials)."""
    from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError

    if isinstance(error, NoCredentialsError):
        return "no AWS credentials found (AWS_PROFILE, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY or a role)"
    if isinstance(error, EndpointConnectionError):
        return f"cannot reach the S3 endpoint: {error}"
    if isinstance(error, ClientError):
        code = error.response.get("Error", {}).get("Code", "")
        if code in ("404", "NoSuchBucket", "NotFound"):
            return f"bucket {bucket!r} does not exist (create it, or deploy the stack first)"
        if code in ("403", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
            return f"access to bucket {bucket!r} denied ({code})"
    return f"S3 error on bucket {bucket!r}: {error}"
