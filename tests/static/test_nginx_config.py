"""The rendered nginx.conf, plain and TLS: `nginx -t` accepts it and gixy-ng reports no issue."""

from __future__ import annotations

import json
import shutil
import subprocess

import pytest

from components.config import parse_settings
from components.specs.nginx import DOCKER_DNS, NginxPaths, nginx_proxy_spec
from components.versions import NGINX_IMAGE, NGINX_RESOLVE_SINCE
from tests.static.conftest import ON_CI, tool

RENDERS = {
    "plain": {"tls": False, "port": 8080},
    "tls": {"tls": True, "port": 8443},
    "mlflow-auth": {"tls": False},
    "observed": {"tls": False},
}
# `observed`: observability on, each request's line also to mtail over syslog (the name nginx
# resolves at load: the container's alias on the stack, this machine's for `nginx -t`).
METRICS_LOG = {"observed": "proxy-metrics:5140"}


def deployed_config(render: str) -> str:
    """The file the proxy container gets (default paths), for the dev stack's replicas; `mlflow-auth`:
    auth.mode mlflow, where nginx checks no password."""
    proxy = parse_settings({"target": "docker", "proxy": RENDERS[render]}).proxy
    upstreams = ["mlflow-0:5000", "mlflow-1:5000"]
    return nginx_proxy_spec(
        proxy, upstreams, resolver=DOCKER_DNS, authenticate=render != "mlflow-auth", metrics_log=METRICS_LOG.get(render)
    ).config_text


def gixy(conf, *extra: str) -> tuple[int, list[dict], str]:
    result = subprocess.run([tool("gixy"), "-f", "json", *extra, str(conf)], capture_output=True, text=True)
    try:
        issues = json.loads(result.stdout or "[]")
    except ValueError:
        issues = [{"unparsed": result.stdout}]
    return result.returncode, issues, result.stderr


@pytest.mark.parametrize("render", sorted(RENDERS))
def test_gixy_reports_no_issues(tmp_path, render):
    conf = tmp_path / "nginx.conf"
    conf.write_text(deployed_config(render))
    code, issues, stderr = gixy(conf)
    assert (code, issues) == (0, []), (
        f"gixy found issues in the {render} nginx.conf:\n{json.dumps(issues, indent=1)}\n{stderr}"
    )


def pinned_nginx_version() -> str:
    """1.31.1 from nginx:1.31.1 (or nginx:1.31.1-trixie)."""
    return NGINX_IMAGE.split(":", 1)[1].split("-", 1)[0]


@pytest.mark.parametrize("render", sorted(RENDERS))
def test_gixy_knows_no_cve_in_the_pinned_nginx(tmp_path, render):
    conf = tmp_path / "nginx.conf"
    conf.write_text(deployed_config(render))
    code, issues, stderr = gixy(conf, "--nginx-version", pinned_nginx_version())
    assert (code, issues) == (0, []), "\n".join(i.get("reason", str(i)) for i in issues) + stderr


def test_gixy_does_report_a_bad_config(tmp_path):
    """The check can fail: an open proxy on a user-chosen host is reported."""
    conf = tmp_path / "nginx.conf"
    conf.write_text(
        "events {}\nhttp { server { listen 8080; server_tokens off; location / { proxy_pass http://$http_host; } } }\n"
    )
    code, issues, _ = gixy(conf)
    assert code != 0 and {i["plugin"] for i in issues} == {"ssrf"}


@pytest.mark.skipif(shutil.which("nginx") is None and not ON_CI, reason="nginx is not installed (CI installs it)")
@pytest.mark.parametrize("render", sorted(RENDERS))
def test_nginx_t_accepts_the_config(tmp_path, render):
    """`nginx -t` on the same render, with its files (htpasswd, certificate, pid, temp) in a temp dir."""
    paths = NginxPaths(
        htpasswd=str(tmp_path / "htpasswd"),
        tls_certificate=str(tmp_path / "tls.crt"),
        tls_key=str(tmp_path / "tls.key"),
        pid=str(tmp_path / "nginx.pid"),
        temp_dir=str(tmp_path),
        access_log=str(tmp_path / "access.log"),
        error_log=str(tmp_path / "error.log"),
    )
    proxy = parse_settings({"target": "docker", "proxy": RENDERS[render]}).proxy
    # As the container runs it: names re-resolved through a DNS server, presigned offers withheld.
    text = nginx_proxy_spec(
        proxy,
        ["localhost:5000"],
        listen_port=18080,
        health_port=18081,
        listen_address="127.0.0.1",
        paths=paths,
        worker_user=None,
        resolver="127.0.0.1",
        metrics_log="localhost:5140" if render in METRICS_LOG else None,
    ).config_text
    assert ("syslog:server=localhost:5140" in text) == (render in METRICS_LOG)
    # Debian's nginx (1.22) predates the upstream `resolve` parameter (1.27.3+, the pinned image
    # has it: test_the_pinned_nginx_supports_upstream_resolve); everything else is checked as is.
    assert text.count(" resolve;") == 1
    text = text.replace(" resolve;", ";")
    (tmp_path / "htpasswd").write_text("mlflow:$6$salt$hash\n")
    if proxy.tls:
        subprocess.run(
            [
                "openssl",
                "req",
                "-x509",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-keyout",
                paths.tls_key,
                "-out",
                paths.tls_certificate,
                "-subj",
                "/CN=localhost",
                "-days",
                "1",
            ],
            check=True,
            capture_output=True,
        )
    conf = tmp_path / "nginx.conf"
    conf.write_text(text)
    result = subprocess.run(["nginx", "-t", "-c", str(conf)], capture_output=True, text=True)
    assert result.returncode == 0 and "test is successful" in result.stderr, result.stderr


def test_the_pinned_nginx_supports_upstream_resolve():
    """The deployed config re-resolves upstream names (`server ... resolve`), open source since 1.27.3."""
    version = tuple(int(part) for part in pinned_nginx_version().split("."))
    assert version >= NGINX_RESOLVE_SINCE, NGINX_IMAGE
    assert " resolve;" in deployed_config("plain")
