"""The ASGI body limits in process (the real-hub tests are in test_limits_live.py)."""

from __future__ import annotations

import json
from collections.abc import MutableMapping
from typing import Any

import pytest

from cortex.body_limits import BodyLimitMiddleware, limit_for, route_limits

DEFAULT, _ = route_limits()


def _scope(method: str, path: str, headers: list[tuple[bytes, bytes]]) -> dict[str, Any]:
    return {"type": "http", "method": method, "path": path, "headers": headers}


class Recorder:
    """An inner ASGI app that reads the whole body, then answers 200."""

    def __init__(self) -> None:
        self.called = False
        self.received: list[dict[str, Any]] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        self.called = True
        while True:
            message = await receive()
            self.received.append(message)
            if message["type"] == "http.disconnect" or not message.get("more_body"):
                break
        if self.received[-1]["type"] == "http.disconnect":
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


async def _run(
    scope: dict[str, Any], chunks: list[bytes]
) -> tuple[Recorder, list[MutableMapping[str, Any]]]:
    app = Recorder()
    sent: list[MutableMapping[str, Any]] = []
    queue = [
        {"type": "http.request", "body": c, "more_body": i < len(chunks) - 1}
        for i, c in enumerate(chunks)
    ]

    async def receive() -> dict[str, Any]:
        if not queue:
            raise AssertionError("read past the body")
        return queue.pop(0)

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    await BodyLimitMiddleware(app)(scope, receive, send)
    return app, sent


async def test_a_declared_length_over_the_limit_is_refused_unread():
    headers = [(b"content-length", str(DEFAULT + 1).encode())]
    app, sent = await _run(_scope("POST", "/api/v1/sessions/", headers), [b"x"])
    assert not app.called
    assert sent[0]["status"] == 413
    assert json.loads(sent[1]["body"])["error"]["code"] == "request_too_large"


async def test_a_declared_length_within_the_limit_passes():
    headers = [(b"content-length", b"2")]
    app, sent = await _run(_scope("POST", "/api/v1/sessions/", headers), [b"{}"])
    assert app.called and sent[0]["status"] == 200


async def test_a_bad_length_is_400():
    headers = [(b"content-length", b"12x")]
    app, sent = await _run(_scope("POST", "/api/v1/sessions/", headers), [b"x"])
    assert not app.called and sent[0]["status"] == 400


async def test_a_chunked_body_is_refused_once_the_count_passes_the_limit():
    piece = b"x" * (DEFAULT // 4)
    chunks = [piece] * 8
    headers = [(b"transfer-encoding", b"chunked")]
    app, sent = await _run(_scope("POST", "/api/v1/sessions/", headers), chunks)
    assert [m["type"] for m in app.received] == ["http.request"] * 4 + ["http.disconnect"]
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.body"]
    assert sent[0]["status"] == 413


async def test_a_chunked_body_within_the_limit_passes_whole():
    headers = [(b"transfer-encoding", b"chunked")]
    app, sent = await _run(_scope("POST", "/api/v1/sessions/", headers), [b"a", b"b", b""])
    assert len(app.received) == 3 and sent[0]["status"] == 200


@pytest.mark.parametrize(
    ("method", "path", "credentialed", "larger"),
    [
        ("POST", "/api/v1/nodes/n1/files/", True, True),
        ("POST", "/api/v1/nodes/n1/files/", False, False),
        ("GET", "/api/v1/nodes/n1/files/", True, False),
        ("POST", "/api/v1/stt/transcribe/", True, True),
        ("POST", "/api/v1/sessions/7/messages/", True, True),
        ("POST", "/api/v1/sessions/", True, False),
        ("POST", "/api/v1/auth/login/", False, False),
        ("POST", "/api/v1/nodes/n1/files/extra/", True, False),
    ],
)
def test_the_limit_table(method, path, credentialed, larger):
    limit = limit_for(method, path, credentialed=credentialed)
    assert (limit > DEFAULT) is larger
