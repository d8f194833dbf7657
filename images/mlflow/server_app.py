"""Our ASGI app around MLflow's: an audit log of every write, and a guard that answers 507 when
the server's upload space cannot take an upload (instead of a bare 500 the client retries).

`mlflow server --app-name platform` (or `basic-auth`) finds these factories through the
`mlflow.app` entry points of images/mlflow/mlflow_platform_app-1.0.dist-info (on PYTHONPATH, ahead
of site-packages, so our `basic-auth` is found before MLflow's and MLflow still runs its own
basic-auth bootstrap before forking workers). Standard library only at import time: MLflow's
CLI imports this module in the parent process to tell whether the app is a factory.
"""

from __future__ import annotations

import base64
import binascii
import datetime
import errno
import json
import logging
import logging.handlers
import os
import re
import shutil
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import server_contract as contract

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

AUDIT_LOGGER = "mlflow_platform.audit"
AUDIT_FILE_BYTES = 50 * 2**20
AUDIT_FILE_BACKUPS = 5
# JSON bodies up to this size are read for the object ids they name; bigger ones pass unread.
MAX_ID_BODY_BYTES = 64 * 1024
# What an upload must leave free on the scratch volume (MLflow's own temp files, the auth ini).
UPLOAD_RESERVE_BYTES = 64 * 2**20
UPLOAD_RESERVE_FRACTION = 0.05

API_PREFIX = re.compile(r"^/(?:ajax-)?api/[23]\.0/")
ARTIFACT_UPLOAD = re.compile(r"^/(?:ajax-)?api/2\.0/mlflow-artifacts/artifacts/")
WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# The API's POSTs that change nothing (MLflow searches by POST): every other POST, PUT, PATCH
# and DELETE under /api or /ajax-api is a write (create/delete/restore experiments and runs,
# log-*, set/delete tags and aliases, register, model versions, transition-stage, permissions,
# users, artifact upload/delete, multipart create/complete/abort). An endpoint MLflow adds is
# audited until it is listed here: the safe side.
READ_ONLY_POSTS = re.compile(
    r"/(?:search|search-datasets|get-history-bulk-interval|batch-get|get-by-name|traces/batch-get)$"
    r"|/mlflow/(?:runs|experiments|registered-models|model-versions|logged-models|traces)/search"
)
# The request fields that name an MLflow object, in the query string or a JSON body.
ID_FIELDS = (
    "experiment_id",
    "experiment_ids",
    "run_id",
    "run_uuid",
    "model_id",
    "name",
    "new_name",
    "version",
    "alias",
    "stage",
    "key",
    "username",
    "permission",
)


def is_write(method: str, path: str) -> bool:
    """Whether `method path` is an API call that changes something (audited)."""
    if method not in WRITE_METHODS or not API_PREFIX.match(path):
        return False
    return not (method == "POST" and READ_ONLY_POSTS.search(path))


def _header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope.get("headers") or ():
        if key.lower() == name:
            return bytes(value).decode("latin-1")
    return None


def request_user(scope: Scope, trusted_header: str | None) -> str | None:
    """Who sent the request: the basic-auth user name (never the password), else the proxy's
    header when this server trusts one (only the dev proxy sets it, after stripping the client's)."""
    authorization = _header(scope, b"authorization")
    if authorization and authorization[:6].lower() == "basic ":
        try:
            decoded = base64.b64decode(authorization[6:].strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return decoded.split(":", 1)[0] or None
    if trusted_header:
        return _header(scope, trusted_header.lower().encode("latin-1")) or None
    return None


def client_address(scope: Scope) -> str | None:
    """The address our own proxy saw: the last X-Forwarded-For hop (nginx sets it, the ALB
    appends to whatever the client sent), else the peer."""
    forwarded = _header(scope, b"x-forwarded-for")
    if forwarded:
        return forwarded.split(",")[-1].strip() or None
    client = scope.get("client")
    return str(client[0]) if client else None


def object_ids(query: bytes, body: bytes | None) -> dict[str, Any]:
    """The MLflow ids a request names (ID_FIELDS), from its query string and its JSON body."""
    ids: dict[str, Any] = {}
    for key, value in urllib.parse.parse_qsl(query.decode("latin-1"), keep_blank_values=False):
        if key in ID_FIELDS:
            ids[key] = value
    if body:
        try:
            document = json.loads(body)
        except ValueError:
            document = None
        if isinstance(document, dict):
            for key in ID_FIELDS:
                named = document.get(key)
                if isinstance(named, str | int | float) or (
                    isinstance(named, list) and all(isinstance(v, str | int) for v in named)
                ):
                    ids[key] = named
    return ids


def audit_logger(directory: str | None) -> logging.Logger:
    """One JSON line per record to stdout and, given a directory, to its rotating audit.jsonl."""
    logger = logging.getLogger(AUDIT_LOGGER)
    if logger.handlers:
        return logger
    logger.setLevel(logging.INFO)
    logger.propagate = False  # not through MLflow's or uvicorn's formatters
    formatter = logging.Formatter("%(message)s")
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stdout)]
    if directory:
        os.makedirs(directory, mode=0o700, exist_ok=True)
        handlers.append(
            logging.handlers.RotatingFileHandler(
                os.path.join(directory, contract.AUDIT_LOG_FILE),
                maxBytes=AUDIT_FILE_BYTES,
                backupCount=AUDIT_FILE_BACKUPS,
            )
        )
    for handler in handlers:
        handler.setFormatter(formatter)
        logger.addHandler(handler)
    return logger


class AuditLog:
    """ASGI middleware: one JSON line per write (audited or denied), written when it ends."""

    def __init__(self, app: ASGIApp, logger: logging.Logger, *, trusted_user_header: str | None = None) -> None:
        self.app = app
        self.logger = logger
        self.trusted_user_header = trusted_user_header

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        method, path = scope.get("method", ""), scope.get("path", "")
        if scope["type"] != "http" or not is_write(method, path):
            await self.app(scope, receive, send)
            return
        started = time.monotonic()
        body: bytes | None = None
        if not ARTIFACT_UPLOAD.match(path) and _small_json(scope):
            body, receive = await _read_and_replay(receive)
        status = 500  # until the app says otherwise: an exception with no response is a 500
        response_started = False

        async def send_and_record(message: Message) -> None:
            nonlocal status, response_started
            if message["type"] == "http.response.start":
                status, response_started = int(message["status"]), True
            await send(message)

        try:
            await self.app(scope, receive, send_and_record)
        finally:
            record = {
                "time": datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds"),
                "type": "audit",
                "user": request_user(scope, self.trusted_user_header),
                "client": client_address(scope),
                "method": method,
                # The path only: a query string may carry a presigned URL's signature.
                "path": path,
                "ids": object_ids(scope.get("query_string") or b"", body),
                "status": status if response_started else 500,
                "duration_ms": round((time.monotonic() - started) * 1000, 1),
            }
            self.logger.info(json.dumps(record, separators=(",", ":"), default=str))


def _small_json(scope: Scope) -> bool:
    length = _header(scope, b"content-length")
    kind = (_header(scope, b"content-type") or "").lower()
    return bool(length and length.isdigit() and int(length) <= MAX_ID_BODY_BYTES and "json" in kind)


async def _read_and_replay(receive: Receive) -> tuple[bytes, Receive]:
    """Read a (small) request body, and a `receive` that hands the same messages to the app."""
    messages: list[Message] = []
    while True:
        message = await receive()
        messages.append(message)
        if message["type"] != "http.request" or not message.get("more_body", False):
            break
    body = b"".join(m.get("body", b"") for m in messages if m["type"] == "http.request")

    async def replay() -> Message:
        return messages.pop(0) if messages else await receive()

    return body, replay


def _size(n: float) -> str:
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 else f"{n / 2**20:.0f} MiB"


def upload_space_message(total: int, free: int, needed: int | None) -> str:
    need = f"; this upload needs {_size(needed)}" if needed is not None else ""
    return (
        f"the server's upload space ({_size(total)}) is full: {_size(free)} free{need}. "
        "Retrying will not help until space is freed; ask the operator to grow the scratch volume."
    )


def _is_enospc(exc: BaseException | None) -> bool:
    seen = 0
    while exc is not None and seen < 10:
        if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
            return True
        exc, seen = exc.__cause__ or exc.__context__, seen + 1
    return False


class UploadSpaceGuard:
    """ASGI middleware for artifact uploads: 507 before spooling when the declared length does not
    fit in the scratch space, and 507 (not 500) when the disk fills during the spool. MLflow's
    handler spools into a TemporaryDirectory, whose cleanup removes the partial file."""

    def __init__(self, app: ASGIApp, spool_dir: str, *, reserve_bytes: int = UPLOAD_RESERVE_BYTES) -> None:
        self.app = app
        self.spool_dir = spool_dir
        self.reserve_bytes = reserve_bytes

    def reserve(self, total: int) -> int:
        return min(self.reserve_bytes, int(total * UPLOAD_RESERVE_FRACTION))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope.get("method") != "PUT" or not ARTIFACT_UPLOAD.match(scope.get("path", "")):
            await self.app(scope, receive, send)
            return
        usage = shutil.disk_usage(self.spool_dir)
        length = _header(scope, b"content-length")
        needed = int(length) if length and length.isdigit() else None
        if needed is not None and needed > usage.free - self.reserve(usage.total):
            await _send_507(send, upload_space_message(usage.total, usage.free, needed))
            return
        # A 5xx is held back until the app ends: if the disk filled, the client gets 507 instead.
        held: list[Message] = []

        async def hold_errors(message: Message) -> None:
            if held or (message["type"] == "http.response.start" and int(message["status"]) >= 500):
                held.append(message)
            else:
                await send(message)

        try:
            await self.app(scope, receive, hold_errors)
        except Exception as exc:
            if not _is_enospc(exc):
                raise
            usage = shutil.disk_usage(self.spool_dir)
            await _send_507(send, upload_space_message(usage.total, usage.free, needed))
            return
        for message in held:
            await send(message)


async def _send_507(send: Send, message: str) -> None:
    body = json.dumps({"error_code": "RESOURCE_EXHAUSTED", "message": message}).encode()
    await send({
        "type": "http.response.start",
        "status": 507,
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
    })  # fmt: skip
    await send({"type": "http.response.body", "body": body})


def wrap(app: ASGIApp) -> ASGIApp:
    """MLflow's app inside ours: the audit log around the guard, so it records the guard's 507s
    too, and the request metrics outermost (they see every answer, and time all of it)."""
    import request_metrics

    guarded = UploadSpaceGuard(app, tempfile.gettempdir())
    audited = AuditLog(
        guarded,
        audit_logger(os.environ.get(contract.AUDIT_LOG_DIR)),
        trusted_user_header=os.environ.get(contract.PROXY_USER_HEADER) or None,
    )
    return request_metrics.instrument(audited)


def create_app() -> ASGIApp:
    """`--app-name platform`: MLflow's own FastAPI app (what `mlflow server` runs by default)."""
    from mlflow.server.fastapi_app import app

    return wrap(app)


def create_basic_auth_app() -> ASGIApp:
    """`--app-name basic-auth`: MLflow's basic-auth app, the same way."""
    from mlflow.server.auth import create_app as create_mlflow_auth_app

    app = create_mlflow_auth_app()
    promoters = os.environ.get(contract.PROMOTER_ROLES)
    if promoters is not None:  # the stack declares its users: the promotion rule applies
        import promotion_guard

        promotion_guard.install(name for name in promoters.split(",") if name)
    return wrap(app)
