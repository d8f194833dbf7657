"""The dev artifact store encrypts at rest (SSE-S3), proved on the engine the kit runs (SeaweedFS).

The tracking server sets the bucket's default encryption at boot (mlflow_boot, from the spec's
MLFLOW_BOOT_BUCKET_ENCRYPTION); the S3 server encrypts under a KEK given in a security.toml outside
its data dir, as the dev stack's container gets it. Artifacts with a known, random plaintext are
logged with the real client through nginx and read back equal (SHA-256), while a scan of every
byte the engine keeps on disk finds neither the plaintext nor the KEK. The same scan on a topology
whose bucket has no default encryption does find the plaintext: the scan can fail. A server
restarted on the same data with the same KEK reads the objects; with another KEK it cannot.
"""

from __future__ import annotations

import hashlib
import os
import secrets
from collections.abc import Iterable
from pathlib import Path

import botocore.exceptions
import mlflow
import pytest
from botocore.config import Config

from images.mlflow import server_contract as contract
from testkit.s3 import LocalS3

from .conftest import require_nginx, start_topology, stop_topology
from .helpers import sha256_file, unique

pytestmark = pytest.mark.e2e

# One PUT, and one above boto3's 8 MiB multipart threshold (the server uploads with upload_file).
SIZES = {"small.bin": 64 << 10, "multipart.bin": 20 << 20}
CHUNK = 8 << 20


def files_containing(root: Path, needles: Iterable[bytes]) -> dict[bytes, list[str]]:
    """needle -> the files under `root` that hold it (read in chunks that overlap by the longest
    needle, so a hit across a chunk boundary counts)."""
    needles = list(needles)
    overlap = max(len(n) for n in needles) - 1
    hits: dict[bytes, list[str]] = {n: [] for n in needles}
    files = [p for p in root.rglob("*") if p.is_file()]
    assert files, f"nothing stored under {root}"
    for path in files:
        found: set[bytes] = set()
        with open(path, "rb") as handle:
            tail = b""
            while chunk := handle.read(CHUNK):
                window = tail + chunk
                found.update(n for n in needles if n in window)
                tail = window[-overlap:] if overlap else b""
        for needle in found:
            hits[needle].append(str(path.relative_to(root)))
    return hits


def write_marked(path: Path, marker: bytes, size: int) -> str:
    """A file of `size` bytes: blocks of the marker then random bytes; its SHA-256. Binary and
    incompressible on purpose: SeaweedFS gzips what looks like text (weed/util/compression.go,
    IsCompressableFileType; http.DetectContentType in weed/operation/upload_content.go), and a
    gzipped plaintext would hide from the scan as well as an encrypted one."""
    block = 4096
    data = b"".join(marker + os.urandom(block - len(marker)) for _ in range(-(-size // block)))[:size]
    path.write_bytes(data)
    return hashlib.sha256(data).hexdigest()


def log_and_read_back(topo, work: Path, marker: bytes) -> tuple[str, dict[str, str]]:
    """Log the marked files in one run through the client; download them; return the run's
    artifact prefix in the bucket and each file's SHA-256 (asserting the downloads equal)."""
    upload, download = work / "upload", work / "download"
    upload.mkdir()
    digests = {name: write_marked(upload / name, marker, size) for name, size in SIZES.items()}
    with topo.tracking_env():
        mlflow.set_experiment(unique("sse"))
        with mlflow.start_run() as run:
            mlflow.log_artifacts(str(upload), artifact_path="marked")
        local = Path(mlflow.artifacts.download_artifacts(run_id=run.info.run_id, dst_path=str(download)))
    for name, digest in digests.items():
        assert sha256_file(local / "marked" / name) == digest, name
    # Proxied artifacts: the bucket holds them under <experiment>/<run>/artifacts/.
    return f"{run.info.experiment_id}/{run.info.run_id}/artifacts", digests


def stored_encryption(topo, prefix: str) -> dict[str, str | None]:
    """What the S3 server says about each stored object's encryption."""
    client = topo.s3_client()
    return {
        name: client.head_object(Bucket=topo.bucket, Key=f"{prefix}/marked/{name}").get("ServerSideEncryption")
        for name in SIZES
    }


def test_artifacts_are_stored_encrypted_and_read_back_equal(tracking, tmp_path):
    marker = b"mlflow-sse-e2e-" + secrets.token_hex(16).encode()
    rules = tracking.s3_client().get_bucket_encryption(Bucket=tracking.bucket)
    (rule,) = rules["ServerSideEncryptionConfiguration"]["Rules"]
    assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == contract.SSE_S3
    prefix, _ = log_and_read_back(tracking, tmp_path, marker)
    assert stored_encryption(tracking, prefix) == dict.fromkeys(SIZES, contract.SSE_S3)
    kek = tracking.s3.sse_kek
    hits = files_containing(tracking.s3.data_dir, [marker, kek.encode(), bytes.fromhex(kek)])
    assert hits == {marker: [], kek.encode(): [], bytes.fromhex(kek): []}
    # weed mini draws its own KEK into the data dir when it is given none.
    assert not (tracking.s3.data_dir / ".mini_sse_kek").exists()


def test_without_the_bucket_default_the_same_scan_finds_the_plaintext(server_venv, tmp_path):
    """The control: nothing but the bucket's default encryption differs."""
    require_nginx()
    marker = b"mlflow-sse-e2e-" + secrets.token_hex(16).encode()
    topo = start_topology(bucket_encryption=False)
    try:
        assert contract.BUCKET_ENCRYPTION not in topo.instances[0].spec.env
        with pytest.raises(botocore.exceptions.ClientError):
            topo.s3_client().get_bucket_encryption(Bucket=topo.bucket)
        prefix, _ = log_and_read_back(topo, tmp_path, marker)
        assert stored_encryption(topo, prefix) == dict.fromkeys(SIZES, None)
        assert files_containing(topo.s3.data_dir, [marker])[marker]
    finally:
        stop_topology(topo)


def test_the_objects_need_the_kek_they_were_written_under(tmp_path):
    """Restarted on the same data: the same KEK reads the object, another one cannot."""
    body = b"sealed under the first KEK " + secrets.token_hex(16).encode()
    first = LocalS3(tmp_path)
    with first:
        client = first.client()
        client.create_bucket(Bucket="sealed")
        rule = {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": contract.SSE_S3}}
        client.put_bucket_encryption(Bucket="sealed", ServerSideEncryptionConfiguration={"Rules": [rule]})
        client.put_object(Bucket="sealed", Key="object", Body=body)
    keys = {"access_key": first.access_key, "secret_key": first.secret_key}
    with LocalS3(tmp_path, sse_kek=first.sse_kek, **keys) as same:
        assert same.client().get_object(Bucket="sealed", Key="object")["Body"].read() == body
    with LocalS3(tmp_path, **keys) as other:
        assert other.sse_kek != first.sse_kek
        with pytest.raises(botocore.exceptions.ClientError):
            # One attempt: the server answers 500 to each, which boto3 would retry with backoff.
            other.client(config=Config(retries={"max_attempts": 1})).get_object(Bucket="sealed", Key="object")
