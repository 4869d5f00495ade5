"""Body limits and WebSocket refusals against a real hub process, over raw sockets."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.slow

DEFAULT_LIMIT = 2621440  # CORTEX_MAX_BODY_BYTES's default
SETUP = (
    "from accounts.models import User;"
    "User.objects.create_user(email='ann@example.com', password='ann pass phrase 1')"
)


@pytest.fixture(scope="module")
def spool(tmp_path_factory) -> Path:  # type: ignore[no-untyped-def]
    return tmp_path_factory.mktemp("spool")


@pytest.fixture(scope="module")
def module_live_hub_env(spool: Path) -> dict[str, str]:
    """The hub's temporary files go to a folder of this module's own."""
    return {"TMPDIR": str(spool)}


@pytest.fixture(scope="module")
def hub(module_live_hub, spool: Path):  # type: ignore[no-untyped-def]
    """One live hub for the module (every test here leaves the spool empty, which each checks)."""
    module_live_hub.spool = spool
    module_live_hub.manage("shell", "-c", SETUP)
    module_live_hub.token = module_live_hub.manage("create_api_token", "ann@example.com").strip()
    return module_live_hub


def _connect(hub: Any) -> socket.socket:
    host, port = hub.http_url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=30)


def _read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise AssertionError(f"connection closed before a response: {data!r}")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return status, headers, body


def _spool_files(hub: Any) -> list[str]:
    """Files in the hub's temporary folder, including unlinked ones it still holds open."""
    held = []
    for fd in Path(f"/proc/{hub.process.pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith(str(hub.spool)):
            held.append(target)
    return sorted(held + [p.name for p in hub.spool.iterdir()])


def _head(path: str, *lines: str) -> bytes:
    return ("\r\n".join([f"POST {path} HTTP/1.1", "Host: 127.0.0.1", *lines, "", ""])).encode()


@pytest.mark.parametrize(
    ("path", "auth", "declared"),
    [
        ("/api/v1/auth/login/", False, 1024**3),  # anonymous, 1 GiB
        ("/api/v1/sessions/", True, DEFAULT_LIMIT + 1),  # one byte over the default
        ("/api/v1/nodes/some-node/files/", False, 64 * 1024**2),  # upload route, anonymous
        ("/api/v1/nodes/some-node/files/", True, 2 * 1024**3),  # upload route, over its limit
        ("/api/v1/preferences/import/", True, 8 * 1024**2),
    ],
)
def test_a_declared_length_over_the_limit_is_413_before_the_body(hub, path, auth, declared):
    lines = ["Content-Type: application/json", f"Content-Length: {declared}"]
    if auth:
        lines.append(f"Authorization: Bearer {hub.token}")
    sock = _connect(hub)
    try:
        sock.sendall(_head(path, *lines) + b'{"email": "x')
        status, headers, body = _read_response(sock)
        assert _spool_files(hub) == []
    finally:
        sock.close()
    assert status == 413
    assert headers["content-type"] == "application/json"
    error = json.loads(body)["error"]
    assert error["code"] == "request_too_large"
    assert set(error) == {"code", "message"}
    assert _spool_files(hub) == []


def test_a_chunked_body_is_counted_and_refused_once_past_the_limit(hub):
    sock = _connect(hub)
    sent = 0
    piece = b'{"title": "' + b"x" * (64 * 1024)
    try:
        sock.sendall(
            _head(
                "/api/v1/sessions/",
                "Content-Type: application/json",
                "Transfer-Encoding: chunked",
                f"Authorization: Bearer {hub.token}",
            )
        )
        # Send just past the limit and never end the body: the answer must come anyway.
        while sent <= DEFAULT_LIMIT:
            sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece))
            sent += len(piece)
        status, _, body = _read_response(sock)
        assert _spool_files(hub) == []
    finally:
        sock.close()
    assert status == 413
    assert json.loads(body)["error"]["code"] == "request_too_large"


def test_a_chunked_body_within_the_limit_still_reaches_the_view(hub):
    sock = _connect(hub)
    body = json.dumps({"title": "chunked"}).encode()
    try:
        sock.sendall(
            _head(
                "/api/v1/sessions/",
                "Content-Type: application/json",
                "Transfer-Encoding: chunked",
                f"Authorization: Bearer {hub.token}",
                "Connection: close",
            )
            + b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
        )
        status, _, answer = _read_response(sock)
    finally:
        sock.close()
    # (DRF reads no body without a Content-Length; the point is that nothing refused it.)
    assert status == 201, answer


def test_a_websocket_to_an_unknown_path_is_closed_4404(hub):
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect

    url = hub.http_url.replace("http://", "ws://") + "/ws/no-such-stream/"
    with (
        connect(url, origin=hub.http_url, open_timeout=10) as ws,
        pytest.raises(ConnectionClosed) as closed,
    ):
        ws.recv(timeout=10)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4404
    assert "Traceback" not in hub.log()
