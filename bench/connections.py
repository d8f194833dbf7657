"""Database connections of the MLflow servers under load, from pg_stat_activity.

    python bench/connections.py                       # 2 servers x 2 workers, basic-auth, 64 clients
    python bench/connections.py --mix log_batch --clients 64 \\
        --server-env MLFLOW_SQLALCHEMYSTORE_POOL_SIZE=3 --server-env MLFLOW_SQLALCHEMYSTORE_MAX_OVERFLOW=38
    python bench/connections.py --servers 1 --workers 1 --mix log_batch   # one worker, 40 requests at once

What runs: the dev topology (testkit.topology.DevTopology) with MLflow's basic-auth app
(`--app-name basic-auth`, users and permissions in `<db>_auth`), `--servers` MLflow servers
of `--workers` uvicorn workers, behind nginx. nginx's own basic auth is switched off and the
Authorization header passed through, as the AWS stack's ALB does in front of the basic-auth
app (the dev nginx config strips it, which the basic-auth app would answer with 401).

1. Setup (as the admin): one experiment, `--users` non-admin users with EDIT on it.
2. Probe (optional): a subprocess of the server venv opens the three stores on the
   topology's PostgreSQL exactly as a worker does, and counts pool checkouts per call
   (SQLAlchemy pool events): how many connections one call holds at once, and which
   engines are shared.
3. Load: `--clients` threads in `--users`+1 processes (one per user, the last one the
   admin), each thread on its own run, for `--duration` s (at most `--max-calls` calls per
   thread), with the real mlflow client through nginx. `--mix mixed`: log_batch (100
   metrics + params + tags), log_metric, search_runs, get_run, create_registered_model,
   search_registered_models; `--mix log_batch`: only log_batch; `--mix log_metric`: only
   log_metric (one connection at a time); `--mix runname`: log_batch
   that also sets the `mlflow.runName` tag (MLflow's deepest nesting of sessions).
   Client retries are off (MLFLOW_HTTP_REQUEST_MAX_RETRIES=0): every failure counts.
4. Idle: `--idle` s more of sampling after the load stopped.

Every `--interval` s (0.2) the sampler reads pg_stat_activity and maps each connection's
client port to the process that owns the socket (/proc/net/tcp + /proc/<pid>/fd): the
`mlflow server` CLI process, the uvicorn supervisor, or worker N of server M.
pg_stat_database.sessions gives the exact number of connections opened per phase.

PostgreSQL runs with `--pg-max-connections` (400) so the demand is measured, not capped;
the table says what the stack itself would configure. Only 127.0.0.1 is used; every
process is stopped by PID and every temp dir removed (the topology's and ours).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing
import os
import platform
import queue
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

HOST = "127.0.0.1"
ADMIN = "admin"
# Bounds: whatever the arguments, a run stays short and small.
MAX_CLIENTS, MAX_DURATION, MAX_IDLE, MAX_CALLS = 128, 120.0, 60.0, 20000
CLIENT_ENV = {
    # One pooled HTTP connection per client thread (read when mlflow builds its session).
    "MLFLOW_HTTP_POOL_MAXSIZE": "128",
    "MLFLOW_HTTP_POOL_CONNECTIONS": "128",
    # No retries: a failure is a failure, and no backoff stretches the run.
    "MLFLOW_HTTP_REQUEST_MAX_RETRIES": "0",
    "MLFLOW_HTTP_REQUEST_TIMEOUT": "90",
    "MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT": "true",
    # Only 127.0.0.1: the client's usage telemetry stays off (it also raced in spawned clients).
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "DO_NOT_TRACK": "true",
}
for _name, _value in CLIENT_ENV.items():  # before anything imports mlflow
    os.environ.setdefault(_name, _value)
MIXES = {
    # (operation, weight)
    "mixed": [
        ("log_batch", 30),
        ("log_metric", 20),
        ("search_runs", 15),
        ("get_run", 10),
        ("create_registered_model", 10),
        ("search_registered_models", 15),
    ],
    "log_batch": [("log_batch", 1)],
    # One connection per request at a time: with NullPool, connections = requests in progress.
    "log_metric": [("log_metric", 1)],
    "runname": [("log_batch_runname", 1)],
}


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------
# The topology: basic-auth app, nginx as a plain load balancer, an uncapped PostgreSQL
# ---------------------------------------------------------------------------


def _pass_authorization(config_text: str) -> str:
    """The rendered nginx config without nginx's own basic auth, Authorization passed on."""
    replacements = [
        ('        proxy_set_header Authorization "";\n', ""),
        ('            auth_basic "MLflow";\n', "            auth_basic off;\n"),
    ]
    for old, new in replacements:
        if old not in config_text:
            raise RuntimeError(f"nginx template changed: {old.strip()!r} not found")
        config_text = config_text.replace(old, new)
    return "\n".join(line for line in config_text.splitlines() if "auth_basic_user_file" not in line) + "\n"


def make_topology(args: argparse.Namespace, server_env: dict[str, str]):
    from testkit import topology
    from testkit.postgres import LocalPostgres

    class BasicAuthTopology(topology.DevTopology):
        """DevTopology with the basic-auth app behind a pass-through nginx."""

        pg_max_connections = args.pg_max_connections

        def _start_postgres(self) -> None:
            db = self.settings.database
            self.postgres = LocalPostgres(
                superuser=db.username,
                password=self.db_owner_password,
                settings={"max_connections": str(self.pg_max_connections)},
            ).start()
            if db.name != "postgres":
                self.postgres.create_database(db.name, owner=db.username)

        def _start_nginx(self) -> None:
            original = topology.nginx_proxy_spec

            def alb_like(*a, **kw):
                spec = original(*a, **kw)
                return dataclasses.replace(spec, config_text=_pass_authorization(spec.config_text))

            topology.nginx_proxy_spec = alb_like
            try:
                super()._start_nginx()
            finally:
                topology.nginx_proxy_spec = original

    settings = {"tracking": {"replicas": args.servers, "workers": args.workers}}
    return BasicAuthTopology(settings, server_env=server_env, app_name="basic-auth", log_archive_dir=args.log_dir)


# ---------------------------------------------------------------------------
# Who owns a connection: client port -> process of the topology
# ---------------------------------------------------------------------------


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


class Owners:
    """Maps (client port) of a PostgreSQL connection to a process label like `mlflow-0/w1`.

    With one worker uvicorn serves in its own process (no supervisor): that one is `w1`.
    """

    def __init__(self, topo, pg_port: int) -> None:
        self.topo = topo
        self.single_worker = topo.settings.tracking.workers == 1
        self.pg_port = pg_port
        self.labels: dict[int, str] = {}  # pid -> label
        self.worker_pids: dict[str, list[int]] = defaultdict(list)
        self.extra: dict[int, str] = {os.getpid(): "bench"}
        self.refresh_processes()

    def refresh_processes(self) -> None:
        from testkit.processes import _descendants

        for inst in self.topo.instances:
            if inst.process is None:
                continue
            leader = inst.process.pid
            self.labels[leader] = f"{inst.name}/cli"
            for pid in sorted(_descendants(leader)):
                if pid in self.labels:
                    continue
                cmd = _cmdline(pid)
                if "resource_tracker" in cmd:
                    label = f"{inst.name}/resource-tracker"
                elif "spawn_main" in cmd or "multiprocessing" in cmd:
                    self.worker_pids[inst.name].append(pid)
                    label = f"{inst.name}/w{len(self.worker_pids[inst.name])}"
                elif "uvicorn" in cmd:
                    label = f"{inst.name}/w1" if self.single_worker else f"{inst.name}/uvicorn"
                elif "huey" in cmd:
                    label = f"{inst.name}/jobs"
                else:
                    label = f"{inst.name}/other"
                self.labels[pid] = label

    def add(self, pid: int, label: str) -> None:
        self.extra[pid] = label

    def _socket_inodes(self, ports: set[int]) -> dict[int, int]:
        """client port -> socket inode, for loopback connections to PostgreSQL."""
        found = {}
        want_remote = f"0100007F:{self.pg_port:04X}"
        with open("/proc/net/tcp") as handle:
            next(handle)
            for line in handle:
                fields = line.split()
                local, remote, inode = fields[1], fields[2], int(fields[9])
                if remote != want_remote or not local.startswith("0100007F:"):
                    continue
                port = int(local.split(":")[1], 16)
                if port in ports and inode:
                    found[port] = inode
        return found

    def resolve(self, ports: set[int]) -> dict[int, str]:
        """client port -> label (`unknown` if no process of ours holds it any more)."""
        inodes = self._socket_inodes(ports)
        if not inodes:
            return {}
        by_inode = {inode: port for port, inode in inodes.items()}
        result: dict[int, str] = {}
        candidates = {**self.labels, **self.extra}
        for attempt in range(2):
            for pid, label in candidates.items():
                try:
                    fds = os.listdir(f"/proc/{pid}/fd")
                except OSError:
                    continue
                for fd in fds:
                    try:
                        target = os.readlink(f"/proc/{pid}/fd/{fd}")
                    except OSError:
                        continue
                    if target.startswith("socket:["):
                        port = by_inode.get(int(target[8:-1]))
                        if port is not None:
                            result[port] = label
            if len(result) == len(inodes) or attempt:
                break
            self.refresh_processes()  # a worker the supervisor restarted, say
            candidates = {**self.labels, **self.extra}
        return result


# ---------------------------------------------------------------------------
# The sampler
# ---------------------------------------------------------------------------

SAMPLE_SQL = """
SELECT pid, datname, client_addr::text, client_port, state
FROM pg_stat_activity
WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()
"""


class Sampler(threading.Thread):
    def __init__(self, topo, owners: Owners, interval: float, max_samples: int) -> None:
        super().__init__(daemon=True, name="pg-sampler")
        self.topo, self.owners, self.interval, self.max_samples = topo, owners, interval, max_samples
        self.phase = "setup"
        self.samples: list[dict[str, Any]] = []
        self.stop_event = threading.Event()
        self.error: BaseException | None = None
        self._owner_of: dict[tuple[int, int], str] = {}  # (backend pid, client port) -> label
        self.non_loopback: set[str] = set()

    def run(self) -> None:
        conn = self.topo.postgres.connect("postgres")
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                next_at = time.monotonic()
                while not self.stop_event.is_set() and len(self.samples) < self.max_samples:
                    began = time.monotonic()
                    cur.execute(SAMPLE_SQL)
                    rows = cur.fetchall()
                    self.samples.append(self._digest(began, rows))
                    next_at += self.interval
                    self.stop_event.wait(max(0.0, next_at - time.monotonic()))
        except BaseException as error:  # reported by the main thread
            self.error = error
        finally:
            conn.close()

    def _digest(self, at: float, rows: list[tuple]) -> dict[str, Any]:
        unknown = {port for pid, _, _, port, _ in rows if port is not None and (pid, port) not in self._owner_of}
        if unknown:
            for port, label in self.owners.resolve(unknown).items():
                for pid, _, _, p, _ in rows:
                    if p == port:
                        self._owner_of[(pid, port)] = label
        conns = []
        for pid, db, addr, port, state in rows:
            if addr and addr not in ("127.0.0.1/32", "127.0.0.1"):
                self.non_loopback.add(addr)
            conns.append(
                {"pid": pid, "db": db, "owner": self._owner_of.get((pid, port), "unknown"), "state": state or "?"}
            )
        return {"t": at, "phase": self.phase, "conns": conns}


def pg_sessions(topo) -> dict[str, int]:
    """pg_stat_database.sessions: connections ever opened, per database."""
    conn = topo.postgres.connect("postgres")
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT datname, sessions FROM pg_stat_database WHERE datname IS NOT NULL")
            return dict(cur.fetchall())
    finally:
        conn.close()


def pg_setting(topo, name: str) -> str:
    conn = topo.postgres.connect("postgres")
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT current_setting(%s)", (name,))
            return cur.fetchone()[0]
    finally:
        conn.close()


# ---------------------------------------------------------------------------
# The probe: connections held at once per store call (runs in the server venv)
# ---------------------------------------------------------------------------

PROBE_SCRIPT = r"""
import json, os, sys, threading, time, uuid
from sqlalchemy import event
from mlflow.entities import Metric, Param, RunTag
from mlflow.exceptions import MlflowException
from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore as TrackingStore
from mlflow.store.model_registry.sqlalchemy_store import SqlAlchemyStore as RegistryStore
from mlflow.server.auth.sqlalchemy_store import SqlAlchemyStore as AuthStore

uri, auth_uri = os.environ["PROBE_DB_URI"], os.environ["PROBE_AUTH_DB_URI"]
tracking = TrackingStore(uri, "s3://probe-bucket/probe")
registry = RegistryStore(uri)
auth = AuthStore()
auth.init_db(auth_uri)
engines = {"tracking": tracking.engine, "registry": registry.engine, "auth": auth.engine}
state = {name: {"now": 0, "max": 0} for name in engines}
lock = threading.Lock()

def listen(name, engine):
    def checkout(*_):
        with lock:
            s = state[name]; s["now"] += 1; s["max"] = max(s["max"], s["now"])
    def checkin(*_):
        with lock:
            state[name]["now"] -= 1
    event.listen(engine, "checkout", checkout)
    event.listen(engine, "checkin", checkin)

for name, engine in engines.items():
    listen(name, engine)

calls = []
def measure(label, fn):
    with lock:
        for s in state.values():
            s["max"] = s["now"]
    error = None
    try:
        fn()
    except MlflowException as e:
        error = str(e).splitlines()[0][:120]
    with lock:
        calls.append({"call": label, "max": {n: s["max"] for n, s in state.items()}, "error": error})

now = int(time.time() * 1000)
exp = tracking.create_experiment(f"probe-{uuid.uuid4().hex[:8]}")
run_box = {}
measure("tracking.create_run", lambda: run_box.setdefault("run", tracking.create_run(exp, "probe", now, [], "probe")))
run_id = run_box["run"].info.run_id
metrics = [Metric(f"m{k}", float(k), now, 0) for k in range(100)]
measure("tracking.log_batch(100 metrics, 2 params, 1 tag)",
        lambda: tracking.log_batch(run_id, metrics, [Param("p1", "1"), Param("p2", "2")], [RunTag("t", "v")]))
measure("tracking.log_batch(100 metrics)", lambda: tracking.log_batch(run_id, metrics, [], []))
measure("tracking.log_batch(tags incl. mlflow.runName)",
        lambda: tracking.log_batch(run_id, [], [], [RunTag("mlflow.runName", "renamed"), RunTag("t2", "v")]))
measure("tracking.set_tag(mlflow.runName)", lambda: tracking.set_tag(run_id, RunTag("mlflow.runName", "again")))
measure("tracking.log_metric", lambda: tracking.log_metric(run_id, Metric("loss", 0.5, now, 1)))
measure("tracking.get_run", lambda: tracking.get_run(run_id))
measure("tracking.search_runs", lambda: tracking.search_runs([exp], "", 1, max_results=50))
name = f"probe-model-{uuid.uuid4().hex[:8]}"
measure("registry.create_registered_model", lambda: registry.create_registered_model(name))
measure("registry.create_registered_model(duplicate)", lambda: registry.create_registered_model(name))
measure("registry.search_registered_models", lambda: registry.search_registered_models(max_results=50))
measure("auth.authenticate_user", lambda: auth.authenticate_user("admin", "not-the-password"))
measure("auth.list_experiment_permissions", lambda: auth.list_experiment_permissions("admin"))

again = TrackingStore(uri, "s3://probe-bucket/probe")
pools = {n: {"class": type(e.pool).__name__, "pool_size": e.pool.size(), "max_overflow": e.pool._max_overflow,
             "timeout_s": e.pool.timeout(), "pre_ping": e.pool._pre_ping} for n, e in engines.items()}
print(json.dumps({
    "pools": pools,
    "tracking_engine_is_registry_engine": tracking.engine is registry.engine,
    "second_tracking_store_reuses_engine": again.engine is tracking.engine,
    "calls": calls,
}))
"""


def run_probe(topo, venv: Path, server_env: dict[str, str], owners: Owners) -> dict[str, Any] | None:
    db = topo.settings.database
    env = {k: v for k, v in topo.instances[0].env.items() if not k.endswith("_FILE")}
    env.update(PROBE_DB_URI=topo.postgres.url(db.name), PROBE_AUTH_DB_URI=topo.postgres.url(f"{db.name}_auth"))
    env.update(server_env)
    env.pop("PYTHONPATH", None)
    proc = subprocess.Popen(
        [str(venv / "bin" / "python"), "-c", PROBE_SCRIPT],
        env=env,
        cwd=tempfile.gettempdir(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    owners.add(proc.pid, "probe")
    try:
        out, err = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, 9)
        proc.wait()
        log("probe timed out")
        return None
    if proc.returncode != 0:
        log(f"probe failed ({proc.returncode}): {err.strip().splitlines()[-1:] if err.strip() else ''}")
        return None
    return json.loads(out.strip().splitlines()[-1])


# ---------------------------------------------------------------------------
# The load: one process per user, threads inside
# ---------------------------------------------------------------------------


def _load_process(spec: dict, ready: Any, go: Any, results: Any) -> None:
    """One user's client threads (a child process, spawned)."""
    os.chdir(tempfile.gettempdir())  # nothing of the client lands in the repo
    os.environ.update(CLIENT_ENV)
    os.environ.update(
        MLFLOW_TRACKING_URI=spec["uri"],
        MLFLOW_TRACKING_USERNAME=spec["username"],
        MLFLOW_TRACKING_PASSWORD=spec["password"],
    )
    import random

    from mlflow import MlflowClient
    from mlflow.entities import Metric, Param, RunTag

    client = MlflowClient(spec["uri"], registry_uri=spec["uri"])
    threads_n, tag = spec["threads"], spec["tag"]
    run_ids = [client.create_run(spec["experiment_id"], run_name=f"{tag}-{i}").info.run_id for i in range(threads_n)]
    ops = [op for op, _ in MIXES[spec["mix"]]]
    weights = [weight for _, weight in MIXES[spec["mix"]]]
    stats: dict[str, dict[str, Any]] = {}
    stats_lock = threading.Lock()

    def record(op: str, seconds: float | None, error: str | None) -> None:
        with stats_lock:
            s = stats.setdefault(op, {"ok": [], "errors": 0, "error_samples": Counter()})
            if error is None:
                s["ok"].append(seconds)
            else:
                s["errors"] += 1
                s["error_samples"][error] += 1

    def worker(index: int, deadline: float) -> None:
        rng = random.Random(f"{tag}-{index}")
        run_id = run_ids[index]
        for step in range(spec["max_calls"]):
            if time.monotonic() >= deadline:
                break
            op = rng.choices(ops, weights)[0]
            now_ms = int(time.time() * 1000)
            began = time.perf_counter()
            try:
                if op == "log_batch":
                    client.log_batch(
                        run_id,
                        metrics=[Metric(f"m{k}", float(k + step), now_ms, step) for k in range(100)],
                        params=[Param(f"p{step}", str(step))],
                        tags=[RunTag("step", str(step))],
                    )
                elif op == "log_batch_runname":
                    client.log_batch(
                        run_id,
                        metrics=[Metric(f"m{k}", float(k + step), now_ms, step) for k in range(20)],
                        tags=[RunTag("mlflow.runName", f"{tag}-{index}-{step}"), RunTag("step", str(step))],
                    )
                elif op == "log_metric":
                    client.log_metric(run_id, "loss", 1.0 / (step + 1), timestamp=now_ms, step=step)
                elif op == "search_runs":
                    client.search_runs([spec["experiment_id"]], max_results=50)
                elif op == "get_run":
                    client.get_run(run_id)
                elif op == "create_registered_model":
                    client.create_registered_model(f"{tag}-{index}-{step}-{uuid.uuid4().hex[:6]}")
                elif op == "search_registered_models":
                    client.search_registered_models(max_results=50)
                record(op, time.perf_counter() - began, None)
            except Exception as error:  # counted, with the first line of each kind
                record(op, None, f"{type(error).__name__}: {str(error).splitlines()[0][:160] if str(error) else ''}")

    ready.put(spec["username"])
    duration = go.get()  # blocks until the parent starts everyone at once
    deadline = time.monotonic() + duration
    threads = [threading.Thread(target=worker, args=(i, deadline), daemon=True) for i in range(threads_n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(duration + 120)
    for s in stats.values():
        s["error_samples"] = dict(s["error_samples"].most_common(3))
    results.put({"username": spec["username"], "stats": stats})


def setup_users(topo, uri: str, users: int) -> tuple[str, list[tuple[str, str]]]:
    """As the admin: the experiment, and `users` non-admin users with EDIT on it."""
    from mlflow import MlflowClient
    from mlflow.server import get_app_client

    from testkit.topology import random_secret

    os.environ.update(CLIENT_ENV)
    os.environ.update(MLFLOW_TRACKING_USERNAME=ADMIN, MLFLOW_TRACKING_PASSWORD=topo.auth_admin_password)
    admin = MlflowClient(uri, registry_uri=uri)
    experiment_id = admin.create_experiment(f"connections-{uuid.uuid4().hex[:8]}")
    auth_client = get_app_client("basic-auth", tracking_uri=uri)
    accounts = []
    for i in range(users):
        name, password = f"analyst-{i}", random_secret(24)
        auth_client.create_user(name, password)
        auth_client.grant_user_permission(name, "experiment", experiment_id, "EDIT")
        accounts.append((name, password))
    accounts.append((ADMIN, topo.auth_admin_password))
    return experiment_id, accounts


def run_load(
    args, topo, uri: str, experiment_id: str, accounts: list[tuple[str, str]], sampler: Sampler, owners: Owners
) -> dict[str, Any]:
    ctx = multiprocessing.get_context("spawn")
    ready, go, results = ctx.Queue(), ctx.Queue(), ctx.Queue()
    per = [args.clients // len(accounts) + (1 if i < args.clients % len(accounts) else 0) for i in range(len(accounts))]
    procs = []
    for i, ((username, password), threads_n) in enumerate(zip(accounts, per, strict=True)):
        if not threads_n:
            continue
        spec = {
            "uri": uri,
            "username": username,
            "password": password,
            "threads": threads_n,
            "tag": f"c{i}",
            "experiment_id": experiment_id,
            "mix": args.mix,
            "max_calls": args.max_calls,
        }
        proc = ctx.Process(target=_load_process, args=(spec, ready, go, results), daemon=True)
        proc.start()
        owners.add(proc.pid, "client")
        procs.append(proc)
    try:
        waiting = len(procs)
        deadline = time.monotonic() + 120
        while waiting:
            try:
                ready.get(timeout=1)
                waiting -= 1
            except queue.Empty:
                dead = [p.exitcode for p in procs if not p.is_alive()]
                if dead or time.monotonic() > deadline:
                    raise RuntimeError(f"a client process failed during its setup (exit codes {dead})") from None
        sampler.phase = "load"
        sessions_before = pg_sessions(topo)
        began = time.monotonic()
        for _ in procs:
            go.put(args.duration)
        collected = [results.get(timeout=args.duration + 180) for _ in procs]
        elapsed = time.monotonic() - began
        sampler.phase = "idle"
        sessions_after = pg_sessions(topo)
    finally:
        for proc in procs:
            proc.join(10)
            if proc.is_alive():
                proc.kill()
                proc.join(5)
    merged: dict[str, dict[str, Any]] = {}
    for item in collected:
        for op, s in item["stats"].items():
            m = merged.setdefault(op, {"ok": [], "errors": 0, "error_samples": Counter()})
            m["ok"] += s["ok"]
            m["errors"] += s["errors"]
            m["error_samples"].update(s["error_samples"])
    return {
        "ops": merged,
        "elapsed": elapsed,
        "sessions_opened": {db: sessions_after.get(db, 0) - sessions_before.get(db, 0) for db in sessions_after},
    }


# ---------------------------------------------------------------------------
# Figures and the report
# ---------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    values = sorted(values)
    return values[max(0, min(len(values) - 1, round(q / 100 * len(values) + 0.5) - 1))]


def summarize(samples: list[dict[str, Any]], db_names: list[str], topo) -> dict[str, Any]:
    """Peak / steady / idle figures per total, database, server and process."""

    def groups(sample) -> Counter:
        c = Counter()
        for conn in sample["conns"]:
            owner, db = conn["owner"], conn["db"] or "?"
            c["total"] += 1
            c[f"db:{db}"] += 1
            server = owner.split("/")[0] if owner.startswith("mlflow-") else owner
            c[f"server:{server}"] += 1
            c[f"server:{server}|db:{db}"] += 1
            c[f"proc:{owner}"] += 1
            c[f"proc:{owner}|db:{db}"] += 1
            if conn["state"] != "idle":
                c["busy"] += 1
                c[f"proc:{owner}|busy"] += 1
        return c

    by_phase: dict[str, list[Counter]] = defaultdict(list)
    for sample in samples:
        by_phase[sample["phase"]].append(groups(sample))
    load = by_phase.get("load", [])
    steady = load[len(load) // 2 :]  # the second half: pools warmed up
    idle = by_phase.get("idle", [])
    idle_end = idle[-max(1, len(idle) // 4) :] if idle else []
    keys = sorted({k for c in load + idle + by_phase.get("setup", []) for k in c})

    def peak(cs, k):
        return max((c.get(k, 0) for c in cs), default=0)

    def median(cs, k):
        return statistics.median([c.get(k, 0) for c in cs]) if cs else 0

    return {
        "keys": keys,
        "peak": {k: peak(load, k) for k in keys},
        "steady": {k: median(steady, k) for k in keys},
        "idle": {k: median(idle_end, k) for k in keys},
        "before": {k: median(by_phase.get("setup", [])[-3:], k) for k in keys},
        "samples": {phase: len(v) for phase, v in by_phase.items()},
    }


def render(meta: dict, summary: dict, load: dict, probe: dict | None) -> str:
    peak, steady, idle, before = summary["peak"], summary["steady"], summary["idle"], summary["before"]
    main_db, auth_db = meta["db"], f"{meta['db']}_auth"
    lines = [
        f"Machine: {meta['cpus']} CPUs, {meta['platform']}; load average {meta['load_before']:.1f} before, "
        f"{meta['load_after']:.1f} after. MLflow {meta['mlflow']} basic-auth, {meta['servers']} server(s) x "
        f"{meta['workers']} worker(s) behind nginx; {meta['clients']} clients, mix `{meta['mix']}`, "
        f"{meta['duration']} s load + {meta['idle']} s idle; samples every {meta['interval']} s "
        f"({summary['samples'].get('load', 0)} during load). Pool env: {meta['pool_env']}. "
        f"PostgreSQL max_connections {meta['pg_max_connections']} (the stack would set "
        f"{meta['stack_max_connections']}).",
        "",
        "| connections | before load | peak (load) | steady (median, 2nd half of load) | idle after load |",
        "|---|---:|---:|---:|---:|",
    ]

    def row(label, key):
        if not any(d.get(key, 0) for d in (before, peak, steady, idle)):
            return
        lines.append(
            f"| {label} | {before.get(key, 0):g} | {peak.get(key, 0):g} | {steady.get(key, 0):g} | "
            f"{idle.get(key, 0):g} |"
        )

    row("**total**", "total")
    row("busy (not idle)", "busy")
    for db in (main_db, auth_db):
        row(f"database `{db}`", f"db:{db}")
    servers = sorted({k.split("|")[0][7:] for k in summary["keys"] if k.startswith("server:")})
    for server in servers:
        row(f"server {server}", f"server:{server}")
        for db in (main_db, auth_db):
            row(f"&nbsp;&nbsp;{server} `{db}`", f"server:{server}|db:{db}")
    procs = sorted({k.split("|")[0][5:] for k in summary["keys"] if k.startswith("proc:")})
    lines += [
        "",
        f"| process | peak `{main_db}` | peak `{auth_db}` | peak total | peak busy | steady total | "
        f"idle after: `{main_db}` / `{auth_db}` |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for proc in procs:
        if not any(d.get(f"proc:{proc}", 0) for d in (before, peak, steady, idle)):
            continue
        lines.append(
            f"| {proc} | {peak.get(f'proc:{proc}|db:{main_db}', 0)} | {peak.get(f'proc:{proc}|db:{auth_db}', 0)} | "
            f"{peak.get(f'proc:{proc}', 0)} | {peak.get(f'proc:{proc}|busy', 0)} | "
            f"{steady.get(f'proc:{proc}', 0):g} | {idle.get(f'proc:{proc}|db:{main_db}', 0):g} / "
            f"{idle.get(f'proc:{proc}|db:{auth_db}', 0):g} |"
        )
    opened = load["sessions_opened"]
    lines += [
        "",
        f"Connections opened during the load (pg_stat_database.sessions): "
        f"`{main_db}` {opened.get(main_db, 0)}, `{auth_db}` {opened.get(auth_db, 0)}.",
        "",
        "| call | ok | calls/s | p50 ms | p95 ms | failed | first failures |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for op, s in sorted(load["ops"].items()):
        ok = s["ok"]
        samples = "; ".join(f"{n}x {e}" for e, n in s["error_samples"].most_common(2)) if s["errors"] else ""
        lines.append(
            f"| {op} | {len(ok)} | {len(ok) / load['elapsed']:.1f} | {percentile(ok, 50) * 1000:.0f} | "
            f"{percentile(ok, 95) * 1000:.0f} | {s['errors']} | {samples} |"
        )
    lines += [
        "",
        f"HTTP statuses at nginx: {meta['statuses']}. Server log lines that look like errors: "
        f"{meta['server_error_lines']}; `QueuePool limit` timeouts: {meta['queuepool_errors']}. "
        f"`Create SQLAlchemy engine` log lines per server: {meta['engine_lines']}.",
    ]
    if probe:
        lines += [
            "",
            "Probe (server venv, same env as a worker): pools "
            + ", ".join(
                f"{n}: {p['class']} {p['pool_size']}+{p['max_overflow']} (timeout {p['timeout_s']:g} s, "
                f"pre_ping {p['pre_ping']})"
                for n, p in probe["pools"].items()
            )
            + f"; tracking engine is registry engine: {probe['tracking_engine_is_registry_engine']}; "
            f"a second tracking store reuses the engine: {probe['second_tracking_store_reuses_engine']}.",
            "",
            "| store call | connections held at once: tracking / registry / auth |",
            "|---|---|",
        ]
        for call in probe["calls"]:
            m = call["max"]
            note = f" (raised: {call['error']})" if call["error"] else ""
            lines.append(f"| {call['call']}{note} | {m['tracking']} / {m['registry']} / {m['auth']} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--servers", type=int, default=2)
    parser.add_argument("--workers", type=int, default=2, help="uvicorn workers per server")
    parser.add_argument("--clients", type=int, default=64, help="client threads in total")
    parser.add_argument("--users", type=int, default=3, help="non-admin users (plus the admin), one process each")
    parser.add_argument("--mix", choices=sorted(MIXES), default="mixed")
    parser.add_argument("--duration", type=float, default=40.0, help="seconds of load (> 30: the pool timeout)")
    parser.add_argument("--idle", type=float, default=8.0, help="seconds of sampling after the load")
    parser.add_argument("--interval", type=float, default=0.2, help="sampling interval, seconds")
    parser.add_argument("--max-calls", type=int, default=5000, help="upper bound of calls per client thread")
    parser.add_argument("--pg-max-connections", type=int, default=400)
    parser.add_argument("--no-probe", action="store_true", help="skip the per-call connection probe")
    parser.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra MLflow server env, e.g. MLFLOW_SQLALCHEMYSTORE_POOL_SIZE=3",
    )
    parser.add_argument("--json", type=Path, help="also write the raw figures here")
    parser.add_argument("--log-dir", type=Path, help="keep every process log here (outside the repo)")
    args = parser.parse_args(argv)
    if not (
        1 <= args.clients <= MAX_CLIENTS
        and 0 < args.duration <= MAX_DURATION
        and 0 <= args.idle <= MAX_IDLE
        and 1 <= args.max_calls <= MAX_CALLS
        and 0.05 <= args.interval <= 5
        and 1 <= args.servers <= 4
        and 1 <= args.workers <= 8
        and 0 <= args.users <= 8
        and 50 <= args.pg_max_connections <= 2000
    ):
        parser.error("keep it bounded: <= 128 clients, <= 120 s load, <= 60 s idle, <= 4 servers x 8 workers")
    server_env = dict(item.split("=", 1) for item in args.server_env)

    from components.specs.mlflow_server import database_connections_needed
    from testkit.server_venv import require_server_venv

    venv = require_server_venv()
    load_before = os.getloadavg()[0]
    topo = make_topology(args, server_env)
    sampler = None
    try:
        log(f"starting {args.servers} server(s) x {args.workers} worker(s) with basic-auth ...")
        topo.start()
        uri = topo.tracking_uri
        log(f"topology up: {uri}")
        owners = Owners(topo, topo.postgres.port)
        sampler = Sampler(
            topo, owners, args.interval, max_samples=int((args.duration + args.idle + 600) / args.interval)
        )
        sampler.start()
        experiment_id, accounts = setup_users(topo, uri, args.users)
        probe = None if args.no_probe else run_probe(topo, venv, server_env, owners)
        time.sleep(1.0)  # a few "before" samples
        owners.refresh_processes()
        log(f"load: {args.clients} clients, mix {args.mix}, {args.duration} s")
        load = run_load(args, topo, uri, experiment_id, accounts, sampler, owners)
        log(f"load done in {load['elapsed']:.1f} s; idle sampling {args.idle} s")
        time.sleep(args.idle)
        sampler.stop_event.set()
        sampler.join(10)
        if sampler.error:
            raise sampler.error
        db = topo.settings.database.name
        statuses = Counter(e["status"] for e in topo.access_log())
        error_lines = {name: len(lines) for name, lines in topo.error_lines().items()}
        logs = {inst.name: inst.log_text() for inst in topo.instances}
        meta = {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "load_before": load_before,
            "load_after": os.getloadavg()[0],
            "mlflow": "3.17.2",
            "servers": args.servers,
            "workers": args.workers,
            "clients": args.clients,
            "mix": args.mix,
            "duration": args.duration,
            "idle": args.idle,
            "interval": args.interval,
            "db": db,
            "pool_env": {k: v for k, v in topo.instances[0].env.items() if k.startswith("MLFLOW_SQLALCHEMYSTORE")},
            "pg_max_connections": pg_setting(topo, "max_connections"),
            "stack_max_connections": max(100, database_connections_needed(args.workers, args.servers)),
            "statuses": dict(sorted(statuses.items())),
            "server_error_lines": error_lines,
            "queuepool_errors": sum(text.count("QueuePool limit") for text in logs.values()),
            "engine_lines": {name: text.count("Create SQLAlchemy engine") for name, text in logs.items()},
            "non_loopback_clients": sorted(sampler.non_loopback),
            "worker_pids": dict(owners.worker_pids),
        }
        summary = summarize(sampler.samples, [db, f"{db}_auth"], topo)
    finally:
        if sampler is not None:
            sampler.stop_event.set()
        topo.stop()
    print(render(meta, summary, load, probe))
    if args.json:
        ops = {
            op: {
                "ok": len(s["ok"]),
                "errors": s["errors"],
                "p50_ms": percentile(s["ok"], 50) * 1000,
                "p95_ms": percentile(s["ok"], 95) * 1000,
                "error_samples": dict(s["error_samples"]),
            }
            for op, s in load["ops"].items()
        }
        args.json.write_text(
            json.dumps(
                {
                    "meta": meta,
                    "summary": summary,
                    "ops": ops,
                    "elapsed": load["elapsed"],
                    "sessions_opened": load["sessions_opened"],
                    "probe": probe,
                },
                indent=2,
            )
        )
    failed = sum(s["errors"] for s in load["ops"].values())
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
