"""operations/: the pieces of `make backup` / `make restore` that need no server.

- Object keys survive the tar stream exactly: tarfile normalises member names (a trailing "/"
  turns a member into a directory, stripped), an S3 key is any string, so the key travels in a
  pax header and the member name is a digest.
- The dev stack's target: which containers the commands run in, and that no password reaches
  argv (the dev postgres container trusts local socket connections, the bucket stream reads the
  server's own secret files), checked against a fake docker CLI (tests/fake_docker.py).
"""

from __future__ import annotations

import datetime
import io
import json
import tarfile
from pathlib import Path

import pytest

from operations import bucket_stream
from operations.backup import FORMAT, OBJECTS_FILE, prune, restore, sha256_file, tar_objects, verify_files
from operations.targets import DockerTarget, OperationError, read_stack_settings
from tests.fake_docker import docker_calls, fake

REPO = Path(__file__).resolve().parents[2]
KEYS = ["1/abc/artifacts/a.txt", "dir/", "/leading", "x//y", "é✓/ünï.txt", "k" * 300, "../escape", "sp ace"]


class FakeS3:
    def __init__(self, objects: dict[str, bytes]):
        self.objects = dict(objects)

    def get_paginator(self, _name):
        outer = self

        class Pages:
            def paginate(self, Bucket):
                yield {"Contents": [{"Key": k, "Size": len(v)} for k, v in sorted(outer.objects.items())]}

        return Pages()

    def get_object(self, Bucket, Key):
        return {"Body": io.BytesIO(self.objects[Key])}

    def upload_fileobj(self, data, bucket, key):
        assert not hasattr(data, "seek")  # streamed members cannot seek
        self.objects[key] = data.read()


def test_every_key_survives_dump_and_load_exactly(tmp_path):
    source = FakeS3({key: key.encode() * 3 for key in KEYS})
    stream = io.BytesIO()
    bucket_stream.dump(source, "b", stream)
    path = tmp_path / "objects.tar"
    path.write_bytes(stream.getvalue())
    assert {key for key, _, _ in tar_objects(path)} == set(KEYS)
    with tarfile.open(path) as tar:
        assert all(m.name.startswith("objects/") and ".." not in m.name for m in tar.getmembers())
    into = FakeS3({})
    bucket_stream.load(into, "b", io.BytesIO(stream.getvalue()))
    assert into.objects == source.objects


def test_a_tar_member_without_a_key_is_refused(tmp_path):
    path = tmp_path / "objects.tar"
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        info = tarfile.TarInfo("stray")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    with pytest.raises(OperationError, match="not an object"):
        list(tar_objects(path))


@pytest.fixture
def docker_bin(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    # ps lists the stack's servers (out of order) among other containers; inspect says healthy.
    fake(
        bin_dir,
        "docker",
        f"""echo "$*" >> "{bin_dir / "docker.log"}"
case "$3" in
  ps) printf 'mlflow-dev-mlflow-1\\nmlflow-dev-postgres\\nmlflow-dev-mlflow-0\\nmlflow-devx-mlflow-0\\nmlflow-dev-mlflow-0-old\\n';;
  inspect) echo healthy;;
esac
exit 0""",
    )
    return bin_dir


def target(bin_dir: Path) -> DockerTarget:
    return DockerTarget(
        prefix="mlflow-dev",
        database="mlflow",
        owner="mlflow",
        bucket="mlflow",
        docker_host="unix:///var/run/docker.sock",
        docker=str(bin_dir / "docker"),
        healthy_timeout=5,
    )


def test_postgres_tools_run_in_the_postgres_container_as_the_owner_without_a_password(docker_bin):
    command = target(docker_bin).postgres("pg_dump", "mlflow", "--format=custom")
    assert command.argv[1:] == [
        "--host",
        "unix:///var/run/docker.sock",
        "exec",
        "-i",
        "mlflow-dev-postgres",
        "pg_dump",
        "-U",
        "mlflow",
        "-d",
        "mlflow",
        "--format=custom",
    ]
    assert command.env is None and not any("PASSWORD" in a for a in command.argv)


def test_the_bucket_stream_runs_in_the_first_server_with_its_source_in_argv(docker_bin):
    command = target(docker_bin).bucket_stream("dump", "mlflow")
    assert command.argv[1:6] == ["--host", "unix:///var/run/docker.sock", "exec", "-i", "mlflow-dev-mlflow-0"]
    assert command.argv[6:8] == ["python", "-c"]
    assert command.argv[8] == (REPO / "operations" / "bucket_stream.py").read_text()
    assert command.argv[9:] == ["dump", "mlflow"]


def test_servers_are_the_stacks_only_in_index_order_and_wait_for_healthy(docker_bin):
    docker = target(docker_bin)
    assert docker.servers() == ["mlflow-dev-mlflow-0", "mlflow-dev-mlflow-1"]
    docker.stop_servers()
    docker.start_servers()
    calls = docker_calls(docker_bin)
    assert [c.split(" ", 2)[2] for c in calls if " ps " not in c] == [
        "stop mlflow-dev-mlflow-0 mlflow-dev-mlflow-1",
        "start mlflow-dev-mlflow-0 mlflow-dev-mlflow-1",
        "inspect --format {{.State.Health.Status}} mlflow-dev-mlflow-0",
        "inspect --format {{.State.Health.Status}} mlflow-dev-mlflow-1",
    ]


def test_an_unhealthy_server_fails_the_wait_naming_its_logs(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake(bin_dir, "docker", 'case "$3" in ps) echo mlflow-dev-mlflow-0;; inspect) echo unhealthy;; esac; exit 0')
    with pytest.raises(OperationError, match="mlflow-dev-mlflow-0 is unhealthy; see `docker logs mlflow-dev-mlflow-0`"):
        target(bin_dir).start_servers()


def test_no_server_container_says_the_stack_is_not_up(tmp_path):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    fake(bin_dir, "docker", "echo mlflow-dev-postgres; exit 0")
    with pytest.raises(OperationError, match="is the stack up"):
        target(bin_dir).servers()


def test_the_stack_file_gives_names_and_an_aws_stack_is_refused(tmp_path):
    settings = read_stack_settings(REPO, "dev")
    assert (settings.database.name, settings.database.username, settings.artifact_store.bucket) == ("mlflow",) * 3
    with pytest.raises(OperationError, match="not a docker stack"):
        read_stack_settings(REPO, "prod")
    with pytest.raises(OperationError, match="no stack file"):
        read_stack_settings(tmp_path, "dev")


def test_info_prints_the_mlflow_version(capsys):
    from importlib.metadata import version

    assert bucket_stream.main(["info"]) == 0
    assert json.loads(capsys.readouterr().out) == {"mlflow_version": version("mlflow")}


def write_backup(root: Path, name: str, stamp: str, stack: str | None = None) -> Path:
    folder = root / f"{name}-{stamp}"
    folder.mkdir(parents=True)
    manifest = {"format": FORMAT, "created": stamp, "stack": stack or name}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


def test_prune_keeps_recent_backups_the_newest_and_anything_not_ours(tmp_path):
    now = datetime.datetime(2026, 12, 10, 12, 0, tzinfo=datetime.UTC)
    old = write_backup(tmp_path, "mlflow-dev", "20261201T120000Z")
    older = write_backup(tmp_path, "mlflow-dev", "20261130T120000Z")
    recent = write_backup(tmp_path, "mlflow-dev", "20261205T120000Z")
    other_stack = write_backup(tmp_path, "mlflow-lab", "20261101T000000Z")
    renamed = write_backup(tmp_path, "mlflow-dev", "20261101T000000Z", stack="mlflow-lab")
    not_a_backup = tmp_path / "mlflow-dev-notes"
    not_a_backup.mkdir()
    partial = tmp_path / ".mlflow-dev-20261101T000000Z.partial"
    partial.mkdir()
    said: list[str] = []
    removed = prune(tmp_path, "mlflow-dev", 7, now=now, say=said.append)
    assert sorted(removed) == sorted([old, older])
    assert all(p.exists() for p in (recent, other_stack, renamed, not_a_backup, partial))
    assert said == [f"removed {older.name} (older than 7 days)", f"removed {old.name} (older than 7 days)"]


def test_prune_never_removes_the_newest_backup(tmp_path):
    now = datetime.datetime(2027, 6, 1, tzinfo=datetime.UTC)
    only = write_backup(tmp_path, "mlflow-dev", "20261201T120000Z")
    assert prune(tmp_path, "mlflow-dev", 1, now=now, say=lambda _: None) == []
    assert only.exists()


def test_the_bucket_stream_reads_only_the_stores_secret_files():
    from images.mlflow import server_contract as contract

    environ = {f"{name}_FILE": f"/run/secrets/{name.lower()}" for name in contract.SECRET_NAMES}
    environ["MLFLOW_S3_ENDPOINT_URL"] = "http://minio:9000"
    kept = bucket_stream.store_environ(environ)
    assert kept == {
        "AWS_ACCESS_KEY_ID_FILE": "/run/secrets/aws_access_key_id",
        "AWS_SECRET_ACCESS_KEY_FILE": "/run/secrets/aws_secret_access_key",
        "MLFLOW_S3_ENDPOINT_URL": "http://minio:9000",
    }


class UntouchableTarget:
    """A target any command or server action on which fails the test."""

    name, database, owner, bucket = "mlflow-dev", "mlflow", "mlflow", "mlflow"

    def postgres(self, *args):
        raise AssertionError(f"postgres {args}")

    def bucket_stream(self, *args):
        raise AssertionError(f"bucket_stream {args}")

    def stop_servers(self):
        raise AssertionError("stop_servers")

    def start_servers(self):
        raise AssertionError("start_servers")


def hand_made_backup(folder: Path, bucket: str = "mlflow") -> Path:
    folder.mkdir()
    stream = io.BytesIO()
    bucket_stream.dump(FakeS3({"1/r/artifacts/a.txt": b"abc"}), bucket, stream)
    (folder / OBJECTS_FILE).write_bytes(stream.getvalue())
    (folder / "mlflow.dump").write_bytes(b"PGDMP not really")
    manifest = {
        "format": FORMAT,
        "created": "20261201T000000Z",
        "stack": "mlflow-dev",
        "databases": {
            "mlflow": {
                "file": "mlflow.dump",
                "bytes": 16,
                "sha256": sha256_file(folder / "mlflow.dump"),
                "rows": {},
                "revisions": {},
            }
        },
        "bucket": {
            "name": bucket,
            "file": OBJECTS_FILE,
            "bytes": len(stream.getvalue()),
            "sha256": sha256_file(folder / OBJECTS_FILE),
            "keys": {k: {"size": s, "sha256": d} for k, s, d in tar_objects(folder / OBJECTS_FILE)},
        },
    }
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return folder


def test_a_backup_of_another_bucket_is_refused_before_touching_the_stack(tmp_path):
    folder = hand_made_backup(tmp_path / "b", bucket="elsewhere")
    assert verify_files(folder, json.loads((folder / "manifest.json").read_text())) == []
    with pytest.raises(OperationError, match="bucket 'elsewhere'.*nothing was changed"):
        restore(UntouchableTarget(), folder, replace=True, say=lambda _: None)


def test_a_changed_object_in_the_tar_is_refused_before_touching_the_stack(tmp_path):
    folder = hand_made_backup(tmp_path / "b")
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["bucket"]["keys"]["1/r/artifacts/a.txt"]["sha256"] = "0" * 64
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(OperationError, match="(?s)damaged.*objects differ"):
        restore(UntouchableTarget(), folder, replace=True, say=lambda _: None)


def test_a_folder_without_a_manifest_is_not_a_backup(tmp_path):
    with pytest.raises(OperationError, match="not a backup: no manifest.json"):
        restore(UntouchableTarget(), tmp_path, say=lambda _: None)
