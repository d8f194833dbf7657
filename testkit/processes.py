"""Start, watch and stop local server processes without leaving orphans.

Every process is started in its own session (so its PID is also its process
group id); stopping it signals the leader first for a graceful shutdown, and
then SIGKILLs the whole group plus every descendant found in /proc, so
helpers it forked cannot outlive it.
"""

from __future__ import annotations

import atexit
import os
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = ["ManagedProcess", "free_port", "free_ports", "wait_for_http", "wait_for_tcp"]

# Processes still running when the interpreter exits (a test forgot stop(),
# or Ctrl-C) are killed, because start_new_session detaches them from us.
# A strong set: a forgotten, unreferenced process must still be found here.
_LIVE: set[ManagedProcess] = set()


@atexit.register
def _kill_leftovers() -> None:
    for proc in list(_LIVE):
        proc.kill()


def _descendants(pid: int) -> list[int]:
    """PIDs of all live descendants of `pid`, read from /proc. Needed because
    some servers (PostgreSQL) put each child in its own session, out of
    reach of killpg()."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        # Fields after the ")" that closes the command name: state, ppid, ...
        ppid = int(stat.rpartition(b")")[2].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def free_port(host: str = "127.0.0.1") -> int:
    """Return a TCP port that is free on `host` right now (the kernel picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def free_ports(count: int, host: str = "127.0.0.1") -> list[int]:
    """`count` distinct free ports (all held open together, so no repeats)."""
    socks = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            socks.append(sock)
            sock.bind((host, 0))
        return [s.getsockname()[1] for s in socks]
    finally:
        for sock in socks:
            sock.close()


def wait_for_tcp(host: str, port: int, timeout: float = 10.0) -> None:
    """Block until something accepts TCP connections on host:port."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection((host, port), timeout=0.5):
                return
        except OSError as exc:
            if time.monotonic() >= deadline:
                raise TimeoutError(f"nothing listening on {host}:{port} after {timeout}s") from exc
            time.sleep(0.05)


def wait_for_http(
    url: str,
    timeout: float = 10.0,
    expect_status: Iterable[int] = (200,),
    context: ssl.SSLContext | None = None,
) -> int:
    """Block until GET `url` answers with one of `expect_status`; return that status.
    `context`: the TLS context for an https URL (e.g. one trusting a self-signed certificate)."""
    wanted = set(expect_status)
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2, context=context) as resp:
                last = resp.status
        except urllib.error.HTTPError as exc:  # 4xx/5xx still prove the server answers
            last = exc.code
        except (OSError, ValueError) as exc:
            last = exc
        if last in wanted:
            return last
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{url} did not answer {sorted(wanted)} within {timeout}s (last: {last!r})")
        time.sleep(0.05)


class ManagedProcess:
    """A child process whose stdout+stderr go to `<log_dir>/<name>.log`.

    `stop_signal` is what the leader gets on stop() (SIGTERM by default;
    PostgreSQL wants SIGINT, its "fast" shutdown). `user`/`group` drop
    privileges in the child, which PostgreSQL needs when we run as root.
    """

    def __init__(
        self,
        argv: Sequence[str],
        log_dir: str | os.PathLike[str],
        *,
        name: str | None = None,
        env: Mapping[str, str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
        stop_signal: int = signal.SIGTERM,
        user: str | int | None = None,
        group: str | int | None = None,
    ) -> None:
        self.argv = [str(a) for a in argv]
        self.name = name or Path(self.argv[0]).name
        self.log_path = Path(log_dir) / f"{self.name}.log"
        self.stop_signal = stop_signal
        self._log = open(self.log_path, "ab")
        extra: dict[str, Any] = {}
        if user is not None:
            # Without extra_groups=[] the child would keep root's supplementary groups.
            extra = {"user": user, "group": group, "extra_groups": []}
        try:
            self._popen = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=self._log,
                stderr=subprocess.STDOUT,
                env=dict(env) if env is not None else None,
                cwd=cwd,
                start_new_session=True,  # own process group: killpg() reaches every child
                close_fds=True,
                **extra,
            )
        except BaseException:
            self._log.close()
            raise
        self.pid = self._popen.pid
        _LIVE.add(self)

    # -- state -------------------------------------------------------------

    def _exited(self) -> bool:
        """True once the leader has exited; it stays a zombie (not reaped) so
        its PID, and therefore the process group id, cannot be reused yet."""
        if self._popen.returncode is not None:
            return True
        try:
            info = os.waitid(os.P_PID, self.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return True
        return info is not None

    def is_running(self) -> bool:
        return not self._exited()

    @property
    def returncode(self) -> int | None:
        return self._popen.returncode

    # -- stopping ----------------------------------------------------------

    def _wait_exit(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while not self._exited():
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.02)
        return True

    def _killpg(self, sig: int) -> None:
        try:
            os.killpg(self.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def _reap(self) -> None:
        # Find descendants while the leader still lives (they get reparented
        # when it dies), then SIGKILL the group and each of them.
        victims = [] if self._exited() else _descendants(self.pid)
        self._killpg(signal.SIGKILL)
        for pid in victims:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self._popen.wait()
        _LIVE.discard(self)
        if not self._log.closed:
            self._log.close()

    def stop(self, timeout: float = 10.0) -> int | None:
        """Graceful stop: stop_signal to the leader, wait up to `timeout`, then
        SIGKILL the group and descendants. Returns the exit code (-9 if killed)."""
        if self._popen.returncode is None:
            if not self._exited():
                try:
                    os.kill(self.pid, self.stop_signal)
                except ProcessLookupError:
                    pass
                self._wait_exit(timeout)
            self._reap()
        return self._popen.returncode

    def kill(self) -> int | None:
        """SIGKILL the leader, its group and its descendants immediately."""
        if self._popen.returncode is None:
            self._reap()
        return self._popen.returncode

    # -- logs --------------------------------------------------------------

    def log_text(self) -> str:
        if not self._log.closed:
            self._log.flush()
        try:
            return self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def tail(self, n: int = 40) -> str:
        """Last `n` log lines, for error messages when a server fails."""
        return "\n".join(self.log_text().splitlines()[-n:])

    def __repr__(self) -> str:
        state = "running" if self.is_running() else f"exited({self.returncode})"
        return f"<ManagedProcess {self.name} pid={self.pid} {state}>"


def working_dir(given: Path | None, prefix: str) -> Path:
    """`given` (created if missing), or a fresh temp dir the caller removes when done."""
    if given is not None:
        given.mkdir(parents=True, exist_ok=True)
        return given.resolve()
    return Path(tempfile.mkdtemp(prefix=prefix))
