"""The node's browser sessions with a real Chromium (no hub): one context per chat session,
closed when idle; every request a page makes passes the domain policy, redirects included."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from mesh.agent.browser_actions import BrowserPolicy
from mesh.agent.skills.browser import BrowserError, BrowserSessions, browser_available

pytestmark = pytest.mark.browser


HITS: list[str] = []  # paths the site served, in order


@pytest.fixture
def site() -> Iterator[str]:
    HITS.clear()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            return

        def do_GET(self) -> None:  # noqa: N802
            port = self.server.server_address[1]
            HITS.append(self.path)
            if self.path == "/hop":  # an allowed address that redirects to a refused name
                self.send_response(302)
                self.send_header("Location", f"http://localhost:{port}/")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            body = (
                "<html><head><title>p</title></head><body><p id=n>x</p>"
                f'<img src="http://localhost:{port}/pixel.png"></body></html>'
            ).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def sessions(tmp_path: Path) -> Iterator[BrowserSessions]:
    if not browser_available():
        pytest.fail("Playwright or Chromium is missing: run scripts/system-packages.sh test")
    policy = BrowserPolicy.from_dict({"allowed_domains": ["127.0.0.1"]})
    found = BrowserSessions(policy=lambda: policy, downloads_root=lambda: tmp_path, idle_timeout=1)
    yield found


async def test_each_chat_session_has_its_own_pages_closed_when_idle(sessions, site) -> None:  # type: ignore[no-untyped-def]
    try:
        first = await sessions.run({"action": "navigate", "url": site + "/", "session": "1"}, 30)
        other = await sessions.run({"action": "tabs", "session": "2"}, 30)
        again = await sessions.run({"action": "tabs", "session": "1"}, 30)
        assert (first["url"], first["title"]) == (site + "/", "p")
        assert (other["url"], other["tabs"]) == ("", [])  # session 2 never saw session 1's page
        assert again["tabs"] == [{"tab": 1, "url": site + "/", "title": "p"}]
        # The image from a refused name did not load; the page says so.
        assert first["blocked"] == [
            f"http://localhost:{site.rsplit(':', 1)[1]}/pixel.png: localhost is not in the "
            "node's allowed domains"
        ]

        async def both_closed() -> None:
            while sessions._sessions:
                await asyncio.sleep(0.2)

        await asyncio.wait_for(both_closed(), timeout=60)
        reopened = await sessions.run({"action": "tabs", "session": "1"}, 30)
        assert reopened["tabs"] == []  # a fresh context after the idle close
    finally:
        await sessions.close_all()


async def test_a_redirect_to_a_refused_address_is_blocked(sessions, site) -> None:  # type: ignore[no-untyped-def]
    try:
        with pytest.raises(BrowserError) as caught:
            await sessions.run({"action": "navigate", "url": site + "/hop", "session": "1"}, 30)
        assert (caught.value.code, caught.value.message) == (
            "url_not_allowed",
            "Refused: localhost is not in the node's allowed domains.",
        )
        assert HITS == ["/hop"]  # the refused hop was never fetched
        state = await sessions.run({"action": "tabs", "session": "1"}, 30)
        assert state["url"] == "about:blank"
    finally:
        await sessions.close_all()


async def _exchange(port: int, request: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    await writer.drain()
    data = await asyncio.wait_for(reader.read(), timeout=30)
    writer.close()
    return data


async def test_the_policy_proxy_checks_every_connection_it_is_asked_for(site, tmp_path) -> None:  # type: ignore[no-untyped-def]
    """No Chromium: raw proxy requests, as a page's redirect hop or WebSocket would make."""
    from mesh.agent.skills.browser_proxy import PolicyProxy

    policy = BrowserPolicy.from_dict({"allowed_domains": ["127.0.0.1"]})
    sessions = BrowserSessions(policy=lambda: policy, downloads_root=lambda: tmp_path)
    proxy = PolicyProxy(sessions._proxy_check)
    port = await proxy.start()
    site_port = site.rsplit(":", 1)[1]
    try:
        fine = await _exchange(port, f"GET {site}/ok HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        assert fine.startswith(b"HTTP/1.0 200 ") and b"<title>p</title>" in fine
        assert HITS == ["/ok"]
        for request, status, reason in (
            (f"GET http://localhost:{site_port}/ HTTP/1.1\r\n\r\n", 403, "localhost is not in"),
            (f"CONNECT localhost:{site_port} HTTP/1.1\r\n\r\n", 403, "localhost is not in"),
            ("CONNECT 10.0.0.1:443 HTTP/1.1\r\n\r\n", 403, "10.0.0.1 is not in"),
            ("CONNECT [::1]:443 HTTP/1.1\r\n\r\n", 403, "IPv6 address literals"),
            (f"GET http://u@127.0.0.1:{site_port}/ HTTP/1.1\r\n\r\n", 400, "without user"),
            ("GET /relative HTTP/1.1\r\n\r\n", 400, "only absolute http URLs"),
            ("CONNECT 127.0.0.1:x HTTP/1.1\r\n\r\n", 400, "bad host or port"),
        ):
            answer = await _exchange(port, request.encode())
            assert answer.startswith(f"HTTP/1.1 {status} ".encode()), (request, answer)
            assert reason.encode() in answer, (request, answer)
        assert HITS == ["/ok"]  # nothing refused reached the site
    finally:
        await proxy.close()
