"""The artifact bucket as one tar stream, run where the bucket is reachable: inside an MLflow
server (the dev stack publishes only the proxy, so the host cannot reach MinIO/SeaweedFS).

Standard library, boto3 and the image's `mlflow_boot` only: it is sent as `python -c <source>`
to a server container (`docker exec`) or, in the end-to-end kit, to a server's venv with the
same environment, so nothing of the repo has to be in the image. The S3 endpoint, region and
keys come from the server's own environment (its NAME_FILE secrets), never from argv.

    dump BUCKET    every object as a pax tar member on stdout (key in a pax header, exact)
    load BUCKET    put every member of a tar stream on stdin back under its key
    list BUCKET    one JSON line per object: key, size, sha256 (read back from the store)
    clear BUCKET   delete every object
    count BUCKET   one JSON line: how many objects
    info           one JSON line: the server's MLflow version
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
import tarfile

# The pax header that carries an object's key exactly: a tar member's name is normalised by
# tarfile on reading (a trailing "/" makes a directory of it), an S3 key is any string.
KEY_HEADER = "MLFLOWPLATFORM.key"
CHUNK = 8 << 20


def store_environ(environ):
    """The server's environment without its other secrets' files: only the store's keys are read
    (the container also names the database owner's and the server role's password files)."""
    wanted = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
    return {k: v for k, v in environ.items() if k.startswith(wanted) or not k.endswith("_FILE")}


def client():
    import mlflow_boot
    from botocore.config import Config

    environ = store_environ(os.environ)
    mlflow_boot.load_file_secrets(environ)
    # Whole objects, streamed: long reads, and botocore's own retries (nothing retries above it).
    config = Config(connect_timeout=5, read_timeout=120, retries={"max_attempts": 5, "mode": "standard"})
    return mlflow_boot.s3_client(environ, config)


def objects(s3, bucket):
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        yield from page.get("Contents", [])


def member(key, size):
    info = tarfile.TarInfo(name="objects/" + hashlib.sha256(key.encode()).hexdigest())
    info.size = size
    info.mode = 0o600
    info.pax_headers = {KEY_HEADER: key}
    return info


def member_key(info):
    return info.pax_headers[KEY_HEADER]


def dump(s3, bucket, out):
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        for obj in objects(s3, bucket):
            body = s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"]
            tar.addfile(member(obj["Key"], obj["Size"]), body)


class Reader:
    """Only `read`: a member of a streamed tar cannot seek (and tarfile's stream object has no
    `seekable()`, which s3transfer asks), so boto3 uploads it as a non-seekable stream."""

    def __init__(self, raw):
        self.read = raw.read


def load(s3, bucket, source):
    with tarfile.open(fileobj=source, mode="r|") as tar:
        for info in tar:
            data = tar.extractfile(info)
            if data is None:
                raise SystemExit(f"not an object: tar member {info.name}")
            s3.upload_fileobj(Reader(data), bucket, member_key(info))


def listing(s3, bucket, out):
    for obj in objects(s3, bucket):
        digest = hashlib.sha256()
        for chunk in s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].iter_chunks(CHUNK):
            digest.update(chunk)
        out.write(json.dumps({"key": obj["Key"], "size": obj["Size"], "sha256": digest.hexdigest()}) + "\n")


def clear(s3, bucket):
    keys = [{"Key": obj["Key"]} for obj in objects(s3, bucket)]
    for start in range(0, len(keys), 1000):  # DeleteObjects takes at most 1000 keys
        answer = s3.delete_objects(Bucket=bucket, Delete={"Objects": keys[start : start + 1000], "Quiet": True})
        if answer.get("Errors"):
            raise SystemExit(f"could not delete: {answer['Errors'][:5]}")


def main(argv):
    command = argv[0] if argv else ""
    if command == "info":
        from importlib.metadata import version

        print(json.dumps({"mlflow_version": version("mlflow")}))
        return 0
    if command not in ("dump", "load", "list", "clear", "count") or len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    s3, bucket = client(), argv[1]
    if command == "dump":
        dump(s3, bucket, sys.stdout.buffer)
    elif command == "load":
        load(s3, bucket, sys.stdin.buffer)
    elif command == "count":
        print(json.dumps({"objects": sum(1 for _ in objects(s3, bucket))}))
    elif command == "list":
        listing(s3, bucket, sys.stdout)
    else:
        clear(s3, bucket)
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
