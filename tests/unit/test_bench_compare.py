"""bench/compare.py's parts that decide what its numbers mean: the blog setup is what it claims
(its pins, its nginx and the password file nginx checks), and the CPU meter charges each process
tree, and only it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import requests

from bench import setups
from bench.compare import Cell, render_calls
from bench.cpu import CpuMeter
from testkit.processes import ManagedProcess, free_ports
from testkit.topology import nginx_binary, random_secret

REPO_ROOT = Path(__file__).resolve().parents[2]
BUSY = "import time\nend = time.process_time() + {seconds}\nwhile time.process_time() < end: pass\n"


def pins(path: Path) -> dict[str, str]:
    found = {}
    for line in path.read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, version = line.partition("==")
            found[name.lower().replace("_", "-")] = version
    return found


def test_the_blog_venv_is_its_three_packages_at_the_image_s_versions():
    """Only the setups differ, not the libraries: every package both closures hold is at one
    version, and the blog's has nothing the image lacks beyond what its three packages need."""
    blog, image = pins(setups.BLOG_PINS), pins(REPO_ROOT / "images" / "mlflow" / "requirements.txt")
    assert {name: blog[name] for name in ("mlflow", "psycopg2-binary", "boto3")} == {
        name: image[name] for name in ("mlflow", "psycopg2-binary", "boto3")
    }
    assert {name: version for name, version in blog.items() if image.get(name) != version} == {}
    # What our image adds on top, and so what the comparison includes.
    assert {"uvloop", "httptools", "prometheus-flask-exporter", "flask-wtf"} <= set(image) - set(blog)
    top = [line for line in (setups.BLOG_PINS.parent / "requirements.in").read_text().splitlines()
           if line and not line.startswith("#")]  # fmt: skip
    assert top == ["mlflow==3.17.2", "psycopg2-binary==2.9.13", "boto3==1.44.5"]


@pytest.fixture
def blog_nginx():
    """The blog setup's nginx (bench/setups.py), in front of a closed port: nginx answers 502
    itself once a request passed basic auth, 401 before."""
    if nginx_binary() is None:
        pytest.fail("nginx is not installed (Debian: apt-get install nginx-light)")
    # Not pytest's tmp_path: started as root, nginx's workers run as nobody, who must reach the
    # password file, and pytest's base directory is private to its user.
    base = Path(tempfile.mkdtemp(prefix="bench-blog-nginx-"))
    os.chmod(base, 0o711)
    password = random_secret(32)
    process, port = setups.start_blog_nginx(base / "nginx", free_ports(1)[0], password)
    try:
        yield f"http://127.0.0.1:{port}", password, base / "nginx" / "nginx.conf"
    finally:
        process.stop(5)
        shutil.rmtree(base, ignore_errors=True)


def test_the_blog_nginx_is_the_minimal_one_and_checks_its_apr1_password(blog_nginx):
    url, password, conf = blog_nginx
    text = conf.read_text()
    assert "client_max_body_size 10G;" in text
    # None of what ours adds: no upstream block (so no keep-alive to MLflow), no buffering changes.
    assert "upstream" not in text and "keepalive" not in text and "proxy_buffering" not in text
    line = (conf.parent / "htpasswd").read_text()
    assert line.startswith(f"{setups.BLOG_USER}:$apr1$")  # what `htpasswd -c` writes
    assert password not in line
    session = requests.Session()
    session.trust_env = False
    assert session.get(f"{url}/health", auth=(setups.BLOG_USER, password), timeout=10).status_code == 502
    assert session.get(f"{url}/health", auth=(setups.BLOG_USER, "wrong"), timeout=10).status_code == 401


def test_the_cpu_meter_charges_each_tree_and_keeps_a_lone_process_apart(tmp_path):
    """A parent that burns 0.3 s and its child 0.6 s (started after the meter, so counted from
    zero): the tree gets both, split per process; `alone` counts the parent without the child."""
    child = BUSY.format(seconds=0.6) + "time.sleep(60)\n"
    parent = ("import subprocess, sys\n"
              f"child = subprocess.Popen([sys.executable, '-c', {child!r}])\n"
              + BUSY.format(seconds=0.3) + "time.sleep(60)\n")  # fmt: skip
    script = tmp_path / "parent.py"
    script.write_text(parent)
    process = ManagedProcess([sys.executable, str(script)], tmp_path, name="busy")
    try:
        meter = CpuMeter({"tree": [process.pid], "lone": [process.pid]}, split=("tree",), alone=("lone",))
        meter.start()
        deadline = time.monotonic() + 30
        totals, spread = meter.stop()
        while totals["tree"] < 0.9 and time.monotonic() < deadline:
            time.sleep(0.1)
            totals, spread = meter.stop()
        time.sleep(0.3)  # both are asleep now: nothing more is charged
        settled, spread = meter.stop()
        assert 0.9 <= settled["tree"] <= totals["tree"] + 0.05
        assert 0.3 <= settled["lone"] <= 0.45
        assert len(spread["tree"]) == 2 and 0.6 <= spread["tree"][0] <= 0.7
    finally:
        process.stop(5)


def test_the_table_says_the_ratio_to_the_blog_setup_and_the_spread_between_rounds():
    def cell(setup: str, rate: float, round_: int, failed: int = 0) -> Cell:
        return Cell(setup, "log_metric", 8, round_, int(rate * 10), rate, 40.0, 80.0, failed,
                    "RestException: QueuePool limit" if failed else None, {"mlflow": 5.0, "nginx": 0.5},
                    [2.6, 2.4])  # fmt: skip

    lines = render_calls([cell("blog", 100.0, 1), cell("blog", 120.0, 2, failed=3),
                          cell("ours", 150.0, 1), cell("ours", 170.0, 2)])  # fmt: skip
    ours = next(line for line in lines if "| ours |" in line)
    blog = next(line for line in lines if "| blog |" in line)
    # Medians: 160 against 110.
    assert "| 160.0 (150.0-170.0) | 1.45x |" in ours and "| 1.00x |" in blog
    assert "mlflow 5.0 (2.6/2.4), nginx 0.5" in ours
    assert "| 3 |" in blog
    assert any(
        "blog log_metric x8 (round 2): 3 failed, first: RestException: QueuePool limit" in line for line in lines
    )


def test_compare_refuses_a_setup_it_does_not_know():
    done = subprocess.run([sys.executable, str(REPO_ROOT / "bench" / "compare.py"), "--setups", "ours,nope"],
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 2 and "unknown setups ['nope']" in done.stderr
