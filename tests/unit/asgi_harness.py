"""Driving an ASGI app in a unit test: a request scope, a stand-in for MLflow's app, one call."""

from __future__ import annotations

import asyncio


def scope(method: str, path: str, *, query: bytes = b"", headers: dict[bytes, bytes] | None = None) -> dict:
    return {
        "type": "http",
        "method": method,
        "path": path,
        "query_string": query,
        "headers": list((headers or {}).items()),
        "client": ("10.0.0.9", 5555),
    }


class Recorder:
    """A stand-in for MLflow's app: records what it was given, answers `status` (or raises)."""

    def __init__(self, status: int = 200, raises: BaseException | None = None) -> None:
        self.status, self.raises, self.bodies, self.calls = status, raises, [], 0

    async def __call__(self, scope, receive, send):
        self.calls += 1
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        self.bodies.append(b"".join(chunks))
        if self.raises is not None:
            if self.status >= 500:  # as Starlette's ServerErrorMiddleware: answer 500, then raise
                await send({"type": "http.response.start", "status": 500, "headers": []})
                await send({"type": "http.response.body", "body": b"Internal Server Error"})
            raise self.raises
        await send({"type": "http.response.start", "status": self.status, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})


def call(app, request_scope: dict, body: bytes = b"", chunk: int = 0) -> list[dict]:
    pieces = [body[i : i + chunk] for i in range(0, len(body), chunk)] if chunk and body else [body]
    incoming = [
        {"type": "http.request", "body": piece, "more_body": i < len(pieces) - 1} for i, piece in enumerate(pieces)
    ]
    sent: list[dict] = []

    async def receive():
        return incoming.pop(0) if incoming else {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    asyncio.run(app(request_scope, receive, send))
    return sent
