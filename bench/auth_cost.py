"""What nginx's basic auth costs per request, by SHA-512-crypt work factor (issue 15's first lever).

    python bench/auth_cost.py                 # 3000 requests per work factor
    python bench/auth_cost.py --requests 500  # quick look

nginx checks the Authorization header against the htpasswd file on every request, with glibc's
crypt(): the cost is the hash's rounds. This runs Debian's nginx on the stack's rendered config
(components/specs/nginx.py) with the htpasswd line components/specs/htpasswd.py writes, once per
work factor, and sends the same authenticated requests to each over one kept-alive connection.
The upstream is a closed port, so nginx answers 502 itself after the password check: what is
measured is nginx alone (its workers' CPU seconds from /proc, through psutil), not MLflow.
Prints one markdown table: nginx CPU ms per request and requests/s, per rounds value.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO_ROOT))

import requests  # noqa: E402

from bench.cpu import tree_cpu_seconds  # noqa: E402
from components.config import parse_settings  # noqa: E402
from components.specs.htpasswd import DEFAULT_ROUNDS, GENERATED_PASSWORD_ROUNDS, sha512_crypt  # noqa: E402
from components.specs.nginx import HEALTH_PATH, NginxPaths, nginx_proxy_spec  # noqa: E402
from images.mlflow import server_contract as contract  # noqa: E402
from testkit.processes import ManagedProcess, free_ports, wait_for_http  # noqa: E402
from testkit.topology import random_secret  # noqa: E402

HOST = "127.0.0.1"


def measure(rounds: int, count: int, base: Path) -> tuple[float, float]:
    """(nginx CPU ms per request, requests/s) for `count` authenticated requests."""
    root = base / f"rounds-{rounds}"
    (root / "temp").mkdir(parents=True)
    password = random_secret(contract.PROXY_PASSWORD_LENGTH)
    (root / "htpasswd").write_text(f"mlflow:{sha512_crypt(password, random_secret(16), rounds=rounds)}\n")
    port, health, dead = free_ports(3, HOST)
    paths = NginxPaths(htpasswd=str(root / "htpasswd"), pid=str(root / "nginx.pid"), temp_dir=str(root / "temp"),
                       access_log="/dev/null", error_log=str(root / "error.log"))  # fmt: skip
    proxy = parse_settings({"target": "docker"}).proxy
    # Started as root nginx would run its workers as nobody, who cannot read this temp dir.
    worker_user = "root" if os.geteuid() == 0 else None
    spec = nginx_proxy_spec(proxy, [f"{HOST}:{dead}"], listen_port=port, health_port=health, listen_address=HOST,
                            paths=paths, worker_user=worker_user)  # fmt: skip
    # One worker: the whole cost lands in one process, and the run is not a measure of scheduling.
    (root / "nginx.conf").write_text(spec.config_text.replace("worker_processes auto;", "worker_processes 1;"))
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    process = ManagedProcess([nginx, "-e", "stderr", "-c", str(root / "nginx.conf"), "-g", "daemon off;"], root,
                             name="nginx", cwd=root)  # fmt: skip
    try:
        wait_for_http(f"http://{HOST}:{health}{HEALTH_PATH}", timeout=15)
        url = f"http://{HOST}:{port}/api/2.0/mlflow/experiments/search"
        with requests.Session() as session:
            session.trust_env = False
            session.auth = ("mlflow", password)
            assert session.get(url, timeout=10).status_code == 502  # checked, then no server: nginx's own answer
            before, started = tree_cpu_seconds(process.pid), time.perf_counter()
            for _ in range(count):
                session.get(url, timeout=10)
            elapsed = time.perf_counter() - started
            cpu = tree_cpu_seconds(process.pid) - before
    finally:
        process.stop(5)
    return cpu / count * 1000, count / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000)
    args = parser.parse_args()
    base = Path(tempfile.mkdtemp(prefix="bench-auth-"))
    try:
        results = {
            rounds: measure(rounds, args.requests, base) for rounds in (DEFAULT_ROUNDS, GENERATED_PASSWORD_ROUNDS)
        }
    finally:
        shutil.rmtree(base, ignore_errors=True)
    load = ", ".join(f"{value:.2f}" for value in os.getloadavg())
    print(f"nginx {subprocess.run(['nginx', '-v'], capture_output=True, text=True).stderr.strip()}, "
          f"{os.cpu_count()} CPUs, load average {load}, {args.requests} requests per row\n")  # fmt: skip
    print("| SHA-512-crypt rounds | nginx CPU ms / request | requests/s (1 client) |")
    print("|---:|---:|---:|")
    for rounds, (cpu_ms, rate) in results.items():
        print(f"| {rounds} | {cpu_ms:.3f} | {rate:.0f} |")


if __name__ == "__main__":
    main()
