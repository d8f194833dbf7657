"""Our ASGI app around MLflow's (images/mlflow/server_app.py): the audit log and the upload-space
guard, driven as ASGI apps with a stand-in for MLflow's app."""

from __future__ import annotations

import base64
import configparser
import errno
import io
import json
import logging
import sys
from collections import namedtuple

import pytest
from mlflow.utils.request_utils import _TRANSIENT_FAILURE_RESPONSE_CODES

from components.versions import MLFLOW_IMAGE_DIR
from tests.unit.asgi_harness import Recorder, call, scope

sys.path.insert(0, str(MLFLOW_IMAGE_DIR))
import server_app  # noqa: E402

PASSWORD = "hunter2-not-for-logs"


def basic(user: str, password: str = PASSWORD) -> bytes:
    return b"Basic " + base64.b64encode(f"{user}:{password}".encode())


@pytest.fixture
def audit():
    stream = io.StringIO()
    logger = logging.getLogger(f"test-audit-{id(stream)}")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    logger.addHandler(logging.StreamHandler(stream))

    def lines() -> list[dict]:
        return [json.loads(line) for line in stream.getvalue().splitlines()]

    return logger, lines


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/api/2.0/mlflow/experiments/create"),
        ("POST", "/api/2.0/mlflow/experiments/restore"),
        ("POST", "/api/2.0/mlflow/runs/delete"),
        ("POST", "/ajax-api/2.0/mlflow/runs/log-batch"),
        ("POST", "/api/2.0/mlflow/model-versions/transition-stage"),
        ("POST", "/api/2.0/mlflow/registered-models/alias"),
        ("DELETE", "/api/2.0/mlflow/registered-models/alias"),
        ("POST", "/api/2.0/mlflow/experiments/permissions/create"),
        ("PATCH", "/api/2.0/mlflow/users/update-password"),
        ("PUT", "/api/2.0/mlflow-artifacts/artifacts/1/abc/artifacts/model.pkl"),
        ("DELETE", "/api/2.0/mlflow-artifacts/artifacts/1/abc/artifacts/model.pkl"),
        ("POST", "/api/2.0/mlflow-artifacts/mpu/complete/1/abc/artifacts/big.bin"),
        ("POST", "/api/3.0/mlflow/traces"),
    ],
)
def test_writes_are_audited(method, path):
    assert server_app.is_write(method, path)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/2.0/mlflow/runs/get"),
        ("POST", "/api/2.0/mlflow/runs/search"),
        ("POST", "/ajax-api/2.0/mlflow/experiments/search"),
        ("POST", "/api/2.0/mlflow/logged-models/search"),
        ("GET", "/api/2.0/mlflow-artifacts/artifacts/1/abc/artifacts/model.pkl"),
        ("POST", "/graphql"),
        ("GET", "/health"),
    ],
)
def test_reads_are_not(method, path):
    assert not server_app.is_write(method, path)


def test_a_write_is_one_line_with_user_client_ids_status_and_duration(audit):
    logger, lines = audit
    mlflow_app = Recorder()
    app = server_app.AuditLog(mlflow_app, logger)
    body = json.dumps({"run_id": "r1", "key": "loss", "value": 0.5, "timestamp": 1}).encode()
    headers = {
        b"authorization": basic("alice"),
        b"content-type": b"application/json",
        b"content-length": str(len(body)).encode(),
        b"x-forwarded-for": b"6.6.6.6, 192.0.2.7",
    }
    sent = call(app, scope("POST", "/api/2.0/mlflow/runs/log-metric", headers=headers), body, chunk=7)

    assert mlflow_app.bodies == [body]  # the app still reads the whole body
    assert sent[0]["status"] == 200
    [line] = lines()
    assert line["user"] == "alice" and line["client"] == "192.0.2.7"  # the hop our proxy added
    assert line["method"] == "POST" and line["path"] == "/api/2.0/mlflow/runs/log-metric"
    assert line["ids"] == {"run_id": "r1", "key": "loss"} and line["status"] == 200
    assert line["duration_ms"] >= 0 and line["time"].endswith("+00:00")
    assert PASSWORD not in json.dumps(line) and "Basic" not in json.dumps(line)


def test_a_denied_write_is_a_line_and_a_read_is_none(audit):
    logger, lines = audit
    call(server_app.AuditLog(Recorder(status=403), logger), scope("POST", "/api/2.0/mlflow/experiments/delete",
         query=b"experiment_id=7", headers={b"authorization": basic("bob")}))  # fmt: skip
    call(server_app.AuditLog(Recorder(), logger), scope("GET", "/api/2.0/mlflow/runs/get", query=b"run_id=r1"))
    [line] = lines()
    assert (line["user"], line["status"], line["ids"]) == ("bob", 403, {"experiment_id": "7"})


def test_query_strings_are_never_logged_beyond_object_ids(audit):
    logger, lines = audit
    query = b"path=x&X-Amz-Signature=deadbeef&X-Amz-Credential=AKIA&run_id=r9"
    call(server_app.AuditLog(Recorder(), logger), scope("DELETE", "/api/2.0/mlflow-artifacts/artifacts/x", query=query))
    [line] = lines()
    assert line["ids"] == {"run_id": "r9"}
    assert "deadbeef" not in json.dumps(line) and "AKIA" not in json.dumps(line)


def test_the_proxy_user_header_counts_only_where_the_server_trusts_it(audit):
    logger, lines = audit
    claimed = {b"x-mlflow-platform-user": b"mallory"}
    request = scope("POST", "/api/2.0/mlflow/runs/create", headers=claimed)
    call(server_app.AuditLog(Recorder(), logger), request)
    call(server_app.AuditLog(Recorder(), logger, trusted_user_header="X-MLflow-Platform-User"), request)
    assert [line["user"] for line in lines()] == [None, "mallory"]


def test_an_artifact_body_is_never_buffered_for_ids(audit):
    logger, lines = audit
    body = json.dumps({"run_id": "inside-an-artifact"}).encode()
    headers = {b"content-type": b"application/json", b"content-length": str(len(body)).encode()}
    mlflow_app = Recorder()
    call(
        server_app.AuditLog(mlflow_app, logger),
        scope("PUT", "/api/2.0/mlflow-artifacts/artifacts/a.json", headers=headers),
        body,
    )
    assert mlflow_app.bodies == [body] and lines()[0]["ids"] == {}


def test_an_app_exception_is_a_500_line_and_still_raised(audit):
    logger, lines = audit
    with pytest.raises(RuntimeError):
        call(
            server_app.AuditLog(Recorder(raises=RuntimeError("boom")), logger),
            scope("POST", "/api/2.0/mlflow/runs/create"),
        )
    assert lines()[0]["status"] == 500


Usage = namedtuple("Usage", "total used free")
UPLOAD = "/api/2.0/mlflow-artifacts/artifacts/1/r/artifacts/big.bin"
MIB = 2**20


@pytest.fixture
def disk(monkeypatch):
    usage = {"now": Usage(64 * MIB, 54 * MIB, 10 * MIB)}
    monkeypatch.setattr(server_app.shutil, "disk_usage", lambda path: usage["now"])
    return usage


def test_an_upload_longer_than_the_free_space_is_507_before_the_app_reads_it(disk):
    mlflow_app = Recorder()
    guard = server_app.UploadSpaceGuard(mlflow_app, "/scratch")
    sent = call(guard, scope("PUT", UPLOAD, headers={b"content-length": str(20 * MIB).encode()}))
    assert mlflow_app.calls == 0
    assert sent[0]["status"] == 507 and 507 not in _TRANSIENT_FAILURE_RESPONSE_CODES
    error = json.loads(sent[1]["body"])
    assert error["error_code"] == "RESOURCE_EXHAUSTED"
    assert "the server's upload space (64 MiB) is full: 10 MiB free; this upload needs 20 MiB" in error["message"]


def test_the_reserve_is_kept_free(disk):
    # 64 MiB volume: the reserve is 5% (3.2 MiB), so 6 MiB of the 10 free fit and 7 MiB do not.
    guard = server_app.UploadSpaceGuard(Recorder(), "/scratch")
    assert call(guard, scope("PUT", UPLOAD, headers={b"content-length": str(6 * MIB).encode()}))[0]["status"] == 200
    assert call(guard, scope("PUT", UPLOAD, headers={b"content-length": str(7 * MIB).encode()}))[0]["status"] == 507


def test_a_disk_that_fills_during_the_spool_is_507_not_500(disk):
    full = OSError(errno.ENOSPC, "No space left on device")
    guard = server_app.UploadSpaceGuard(Recorder(status=500, raises=full), "/scratch")
    sent = call(guard, scope("PUT", UPLOAD), b"x" * 100)  # no Content-Length: chunked
    assert [m.get("status") for m in sent if m["type"] == "http.response.start"] == [507]
    assert "upload space (64 MiB) is full" in json.loads(sent[1]["body"])["message"]


def test_other_server_errors_pass_unchanged(disk):
    guard = server_app.UploadSpaceGuard(Recorder(status=500), "/scratch")
    sent = call(guard, scope("PUT", UPLOAD), b"x")
    assert sent[0]["status"] == 500 and sent[1]["body"] == b"{}"
    with pytest.raises(ValueError):
        call(
            server_app.UploadSpaceGuard(Recorder(status=500, raises=ValueError("other")), "/scratch"),
            scope("PUT", UPLOAD),
        )


def test_non_uploads_are_not_checked(disk):
    disk["now"] = Usage(64 * MIB, 64 * MIB, 0)
    guard = server_app.UploadSpaceGuard(Recorder(), "/scratch")
    sent = call(guard, scope("POST", "/api/2.0/mlflow/runs/log-metric", headers={b"content-length": b"100"}))
    assert sent[0]["status"] == 200


def test_the_entry_points_name_our_factories_and_keep_mlflows_basic_auth_name():
    entry_points = configparser.ConfigParser()
    entry_points.read(MLFLOW_IMAGE_DIR / "mlflow_platform_app-1.0.dist-info" / "entry_points.txt")
    apps = dict(entry_points["mlflow.app"])
    from images.mlflow import server_contract as contract

    assert set(apps) == set(contract.APP_NAMES)
    for target in apps.values():
        module, name = target.split(":")
        assert module == "server_app" and callable(getattr(server_app, name))
