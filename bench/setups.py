"""The three deployments bench/compare.py drives side by side, each on 127.0.0.1 with its own
database and bucket:

- `ours`: the dev topology from its specs (testkit.topology.DevTopology), as the stack runs it.
- `blog`: the setup we replace, as the popular blog posts write it: `mlflow server` (its own venv
  with only `mlflow psycopg2-binary boto3`, bench/blog_setup/requirements.txt) on a
  `postgresql+psycopg2://` URI with a pool of 5 + 5, `--artifacts-destination s3://...`, the
  security middleware off, behind a minimal nginx (`client_max_body_size 10G`, basic auth from an
  `htpasswd -c` file, i.e. APR1-MD5). The same PostgreSQL and S3 server kinds as ours.
- `solo`: MLflow's own default, `mlflow server` on SQLite and a local artifact directory, no proxy.

The blog's database password is passed in the environment, not on the command line as the posts
do: the bench must not put a secret into `ps`, and it changes nothing measured.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from testkit.postgres import LocalPostgres
from testkit.processes import ManagedProcess, free_ports, wait_for_http
from testkit.s3 import LocalS3
from testkit.topology import DevTopology, nginx_binary, random_secret
from testkit.venvs import cached_venv

HOST = "127.0.0.1"
BLOG_PINS = Path(__file__).resolve().parent / "blog_setup" / "requirements.txt"
BLOG_USER = "mlflow"
BLOG_BUCKET = "mlflow-blog"
# What the posts set: SQLAlchemy's pool of 5 with 5 overflow connections.
BLOG_POOL = {"MLFLOW_SQLALCHEMYSTORE_POOL_SIZE": "5", "MLFLOW_SQLALCHEMYSTORE_MAX_OVERFLOW": "5"}


def blog_nginx_config(listen_port: int, upstream_port: int, htpasswd: Path, root: Path) -> str:
    """The posts' nginx: one server, basic auth, a 10G body limit, proxy_pass with the usual
    headers; nothing else (no upstream keepalive, default buffering)."""
    return f"""worker_processes auto;
pid {root / "nginx.pid"};
error_log {root / "error.log"} warn;
events {{}}
http {{
    access_log off;
    client_body_temp_path {root / "temp" / "body"};
    proxy_temp_path {root / "temp" / "proxy"};
    fastcgi_temp_path {root / "temp" / "fastcgi"};
    uwsgi_temp_path {root / "temp" / "uwsgi"};
    scgi_temp_path {root / "temp" / "scgi"};
    server {{
        listen {HOST}:{listen_port};
        client_max_body_size 10G;
        location / {{
            auth_basic "MLflow";
            auth_basic_user_file {htpasswd};
            proxy_pass http://{HOST}:{upstream_port};
            proxy_set_header Host $host;
            proxy_set_header X-Real-IP $remote_addr;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
        }}
    }}
}}
"""


def apr1_line(user: str, password: str) -> str:
    """An `htpasswd -c` line (APR1-MD5, Apache's default), made by openssl reading the password
    from stdin."""
    done = subprocess.run(
        ["openssl", "passwd", "-apr1", "-stdin"], input=password, capture_output=True, text=True, check=True
    )
    return f"{user}:{done.stdout.strip()}\n"


def start_blog_nginx(root: Path, upstream_port: int, password: str) -> tuple[ManagedProcess, int]:
    """The posts' nginx in `root` (made here) in front of `upstream_port`, with BLOG_USER's APR1
    line; (the process, its port) once it answers."""
    (root / "temp").mkdir(parents=True)
    htpasswd = root / "htpasswd"
    htpasswd.write_text(apr1_line(BLOG_USER, password))
    if os.geteuid() == 0:  # its workers run as nobody, who must reach and read the htpasswd file
        os.chmod(root, 0o711)
        os.chmod(htpasswd, 0o644)
    port = free_ports(1, HOST)[0]
    conf = root / "nginx.conf"
    conf.write_text(blog_nginx_config(port, upstream_port, htpasswd, root))
    argv = [nginx_binary() or "nginx", "-e", "stderr", "-c", str(conf), "-g", "daemon off;"]
    process = ManagedProcess(argv, root, name="nginx", cwd=root)
    try:
        # Basic auth covers every path: a 401 says nginx is up.
        wait_for_http(f"http://{HOST}:{port}/health", timeout=15, expect_status=(401,))
    except BaseException:
        process.stop(5)
        raise
    return process, port


class Ours:
    """The dev topology, as `make up` runs it (same specs, same settings). Given `settings` (stack
    config keys, e.g. {"tracking": {"workers": 1}}) or `server_env` (extra MLflow server env), a
    variant of it to measure a lever, named `ours-<variant>`."""

    def __init__(
        self,
        settings: Mapping[str, Any] | None = None,
        server_env: Mapping[str, str] | None = None,
        variant: str | None = None,
    ) -> None:
        self.name = f"ours-{variant}" if variant else "ours"
        self.topo = DevTopology(settings, server_env=server_env)

    def start(self) -> None:
        self.topo.start()

    def stop(self) -> None:
        self.topo.stop()

    def client_env(self) -> dict[str, str]:
        return self.topo.client_env()

    def cpu_groups(self) -> dict[str, list[int]]:
        groups: dict[str, list[int]] = {}
        for name, process in self.topo.processes().items():
            group = "mlflow" if name.startswith("mlflow") else name
            groups.setdefault(group, []).append(process.pid)
        return groups


class _MlflowServer:
    """A plain `mlflow server` from the blog venv, with `args` and `env`; `mlflow` in cpu_groups."""

    def _launch(self, root: Path, args: list[str], env: dict[str, str]) -> None:
        venv = cached_venv(BLOG_PINS, "bench-blog-setup")
        self.server_port = free_ports(1, HOST)[0]
        argv = [str(venv / "bin" / "mlflow"), "server", "--host", HOST, "--port", str(self.server_port), *args]
        base_env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
        self.server = ManagedProcess(argv, root, name="mlflow", env={**base_env, **env}, cwd=root)
        wait_for_http(f"http://{HOST}:{self.server_port}/health", timeout=180)


class Blog(_MlflowServer):
    name = "blog"

    def __init__(self) -> None:
        self.password = random_secret(32)
        self.postgres: LocalPostgres | None = None
        self.s3: LocalS3 | None = None
        self.server: ManagedProcess | None = None
        self.nginx: ManagedProcess | None = None
        self.root: Path | None = None

    def start(self) -> None:
        # Made here, not in __init__: a setup that never starts (another one failed first) leaves nothing.
        self.root = Path(tempfile.mkdtemp(prefix="bench-blog-"))
        self.postgres = LocalPostgres().start()
        self.postgres.create_database("mlflow")
        self.s3 = LocalS3().start()
        self.s3.client().create_bucket(Bucket=BLOG_BUCKET)
        env = {
            **self.s3.env(),
            **BLOG_POOL,
            "MLFLOW_BACKEND_STORE_URI": self.postgres.url("mlflow"),
        }
        self._launch(
            self.root, ["--artifacts-destination", f"s3://{BLOG_BUCKET}", "--disable-security-middleware"], env
        )
        if os.geteuid() == 0:  # nginx's workers (nobody) pass through it to their own directory
            os.chmod(self.root, 0o711)
        self.nginx, self.nginx_port = start_blog_nginx(self.root / "nginx", self.server_port, self.password)

    def stop(self) -> None:
        for process in (self.nginx, self.server):
            if process is not None:
                process.stop(10)
        for store in (self.s3, self.postgres):
            if store is not None:
                store.close()
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)

    # Its S3 answers on 127.0.0.1 here, so its clients take MLflow's offer of presigned S3
    # transfers and bypass the proxy; in the posts' compose file the URLs name `minio:9000`, which
    # a laptop cannot reach unless MinIO's port is published. The bench measures both paths.
    transfer_modes = {
        "blog": {"MLFLOW_ENABLE_PROXY_MULTIPART_UPLOAD": "false", "MLFLOW_ENABLE_PROXY_MULTIPART_DOWNLOAD": "false"},
        "blog-presigned": {},
    }

    def client_env(self) -> dict[str, str]:
        return {
            "MLFLOW_TRACKING_URI": f"http://{HOST}:{self.nginx_port}",
            "MLFLOW_TRACKING_USERNAME": BLOG_USER,
            "MLFLOW_TRACKING_PASSWORD": self.password,
        }

    def cpu_groups(self) -> dict[str, list[int]]:
        assert self.postgres and self.postgres.pid and self.s3 and self.s3.pid and self.server and self.nginx
        return {"postgres": [self.postgres.pid], "s3": [self.s3.pid], "mlflow": [self.server.pid],
                "nginx": [self.nginx.pid]}  # fmt: skip


class Solo(_MlflowServer):
    name = "solo"

    def __init__(self) -> None:
        self.server: ManagedProcess | None = None
        self.root: Path | None = None

    def start(self) -> None:
        self.root = Path(tempfile.mkdtemp(prefix="bench-solo-"))
        args = ["--backend-store-uri", f"sqlite:///{self.root / 'mlflow.db'}",
                "--artifacts-destination", str(self.root / "mlartifacts")]  # fmt: skip
        self._launch(self.root, args, {})

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop(10)
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)

    def client_env(self) -> dict[str, str]:
        return {"MLFLOW_TRACKING_URI": f"http://{HOST}:{self.server_port}"}

    def cpu_groups(self) -> dict[str, list[int]]:
        assert self.server is not None
        return {"mlflow": [self.server.pid]}


SETUPS = {"ours": Ours, "blog": Blog, "solo": Solo}
