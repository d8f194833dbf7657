"""What the proxy lets through, and what it does not: auth, health, Host check, body limit."""

from __future__ import annotations

import base64
import http.client
from pathlib import Path

import pytest
import requests

from components.sizes import parse_size

from .conftest import MAX_UPLOAD

pytestmark = pytest.mark.e2e

SEARCH = "/api/2.0/mlflow/experiments/search?max_results=1"
# Every kind of route nginx fronts: REST API, UI-only API, artifacts, the UI itself.
PROTECTED = [
    SEARCH,
    "/ajax-api/2.0/mlflow/experiments/search?max_results=1",
    "/api/2.0/mlflow-artifacts/artifacts?path=",
    "/",
    "/static-files/index.html",
    # Only /health itself is open: no prefix or look-alike rides on it.
    "/healthz",
    "/health/",
    "/health.json",
]


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def get(stack, path: str, **kwargs) -> requests.Response:
    # A raw session: no netrc, no MLFLOW_* env, nothing added behind our back.
    with requests.Session() as session:
        session.trust_env = False
        return session.get(stack.tracking_uri + path, timeout=30, allow_redirects=False, **kwargs)


def test_right_credentials_are_accepted(stack):
    response = get(stack, SEARCH, auth=stack.credentials)
    assert response.status_code == 200
    assert "experiments" in response.json()


@pytest.mark.parametrize("path", PROTECTED)
def test_anonymous_requests_get_401(stack, path):
    response = get(stack, path)
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"] == 'Basic realm="MLflow"'


def test_wrong_password_or_user_gets_401(stack):
    user, password = stack.credentials
    for auth in [
        (user, password + "x"),
        (user, password[:-1]),
        (user, ""),
        ("admin", password),
        (user.upper(), password),
    ]:
        assert get(stack, SEARCH, auth=auth).status_code == 401, auth
    # A malformed header is no way in either.
    assert get(stack, SEARCH, headers={"Authorization": "Basic !!!"}).status_code == 401
    assert get(stack, SEARCH, headers={"Authorization": f"Bearer {password}"}).status_code == 401


def test_health_answers_without_auth(stack):
    response = get(stack, "/health")
    assert response.status_code == 200
    assert response.text == "OK"


def test_foreign_host_header_is_refused(stack):
    # nginx forwards the client's Host; MLflow's --allowed-hosts must refuse it (DNS rebinding).
    for host in ["evil.example", "localhost.evil.example", "127.0.0.2"]:
        response = get(stack, SEARCH, auth=stack.credentials, headers={"Host": host})
        assert response.status_code == 403, host
        assert "Invalid Host header" in response.text
    # ...while the names the stack is configured for pass, with or without a port.
    for host in ["localhost", f"localhost:{stack.nginx_port}", f"127.0.0.1:{stack.nginx_port}"]:
        assert get(stack, SEARCH, auth=stack.credentials, headers={"Host": host}).status_code == 200, host
    # X-Forwarded-Host cannot smuggle a foreign host past the check, nor in.
    response = get(
        stack, SEARCH, auth=stack.credentials, headers={"Host": "evil.example", "X-Forwarded-Host": "localhost"}
    )
    assert response.status_code == 403


def _objects(stack, prefix: str) -> list[str]:
    listing = stack.s3_client().list_objects_v2(Bucket=stack.bucket, Prefix=prefix)
    return [o["Key"] for o in listing.get("Contents", [])]


def test_upload_over_the_body_limit_gets_413(stack):
    limit = parse_size(MAX_UPLOAD)
    assert stack.settings.proxy.max_upload_size == limit
    path = "/api/2.0/mlflow-artifacts/artifacts/0/limit-check/artifacts/too-big.bin"
    # Declared size over the limit: refused from the headers, before any body is sent.
    conn = http.client.HTTPConnection("127.0.0.1", stack.nginx_port, timeout=30)
    try:
        conn.putrequest("PUT", path)
        conn.putheader("Authorization", basic(*stack.credentials))
        conn.putheader("Content-Length", str(limit + 1))
        conn.endheaders()
        response = conn.getresponse()
        assert response.status == 413
    finally:
        conn.close()
    assert _objects(stack, "0/limit-check/") == []


def test_chunked_upload_cannot_bypass_the_body_limit(stack):
    """No Content-Length: nginx counts the streamed bytes and cuts the request at the limit."""
    limit = parse_size(MAX_UPLOAD)
    chunk = b"\0" * (1 << 20)

    def body():
        for _ in range(limit // len(chunk) + 2):
            yield chunk

    path = "/api/2.0/mlflow-artifacts/artifacts/0/limit-check/artifacts/chunked.bin"
    with requests.Session() as session:
        session.trust_env = False
        response = session.put(stack.tracking_uri + path, data=body(), auth=stack.credentials, timeout=120)
    assert response.status_code == 413
    assert _objects(stack, "0/limit-check/") == []
    # MLflow had started spooling it to its scratch dir: the aborted body must not stay there
    # (a full scratch volume would refuse every later upload).
    for inst in stack.instances:
        spooled = sum(p.stat().st_size for p in Path(inst.spec.scratch_dir).rglob("*") if p.is_file())
        assert spooled < 1 << 20, (inst.name, spooled)


def test_no_secret_on_any_command_line(stack):
    """Secrets reach the servers as 0400 files and env, never argv (readable by any local user)."""
    from testkit.processes import _descendants

    secrets = {"db password": stack.db_password, "db owner password": stack.db_owner_password,
               "db monitor password": stack.db_monitor_password,
               "S3 secret key": stack.s3_secret_key, "proxy password": stack.password}  # fmt: skip
    checked = 0
    for name, process in stack.processes().items():
        for pid in [process.pid, *_descendants(process.pid)]:
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
            except OSError:
                continue
            checked += 1
            leaked = [what for what, value in secrets.items() if value in cmdline]
            assert not leaked, (name, pid, leaked)
    assert checked >= 10  # the MLflow tree alone has a dozen processes
    for inst in stack.instances:
        assert not {"MLFLOW_DB_PASSWORD", "AWS_SECRET_ACCESS_KEY"} & set(inst.env)
        for secret in inst.spec.secret_env:
            path = Path(inst.env[f"{secret}_FILE"])
            assert path.stat().st_mode & 0o777 == 0o400, path
