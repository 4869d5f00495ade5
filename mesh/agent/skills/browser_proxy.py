"""A loopback HTTP proxy that every request of the node's Chromium goes through.

Playwright's routes do not see the hops of a redirect (Chromium follows them itself), nor do they
pin the address a name resolved to. This proxy does both: each connection names a host, which is
checked against the domain policy and resolved here; every address must be allowed, and the
connection goes to the checked address (a name cannot resolve differently a moment later).
Plain HTTP requests are forwarded one per connection; HTTPS and WebSockets are tunnelled
(CONNECT), the TLS stays end to end.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

logger = logging.getLogger("cortex_agent.browser")

MAX_HEAD = 64 * 1024
CONNECT_TIMEOUT = 30.0
REFUSED_HEADER = "X-Cortex-Refused"
#: (scheme, host, port) -> (refusal or None, the address to connect to)
Check = Callable[[str, str, int], Awaitable["tuple[str | None, str]"]]


class PolicyProxy:
    """Started on 127.0.0.1 on a free port; `check` decides and resolves each host."""

    def __init__(self, check: Check) -> None:
        self.check = check
        self.server: asyncio.AbstractServer | None = None
        self.port = 0

    async def start(self) -> int:
        self.server = await asyncio.start_server(self._client, "127.0.0.1", 0, limit=MAX_HEAD)
        self.port = self.server.sockets[0].getsockname()[1]
        return self.port

    async def close(self) -> None:
        if self.server is not None:
            self.server.close()
            with contextlib.suppress(Exception):
                await self.server.wait_closed()
            self.server = None

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await self._serve(reader, writer)
        except Exception as exc:  # one bad connection never stops the proxy
            logger.debug("proxy connection failed: %s", exc)
        finally:
            with contextlib.suppress(Exception):
                writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            return
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ")
        if len(parts) != 3:
            await _answer(writer, 400, "bad request line")
            return
        method, target, version = parts
        try:
            if method == "CONNECT":
                host, _, port_text = target.rpartition(":")
                scheme, port = "https", int(port_text)
            else:
                url = urlsplit(target)
                if url.scheme != "http" or not url.hostname or "@" in url.netloc:
                    await _answer(writer, 400, "only absolute http URLs without user names")
                    return
                scheme, host, port = "http", url.hostname, url.port or 80
        except ValueError:
            await _answer(writer, 400, "bad host or port")
            return
        refusal, address = await self.check(scheme, host, port)
        if refusal is not None:
            await _answer(writer, 403, refusal)
            return
        try:
            up_reader, up_writer = await asyncio.wait_for(
                asyncio.open_connection(address, port), CONNECT_TIMEOUT
            )
        except (OSError, asyncio.TimeoutError):
            await _answer(writer, 502, "cannot connect")
            return
        try:
            if method == "CONNECT":
                writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
                await writer.drain()
            else:
                url = urlsplit(target)
                path = (url.path or "/") + (f"?{url.query}" if url.query else "")
                kept = [
                    line
                    for line in lines[1:]
                    if line
                    and line.split(":", 1)[0].strip().lower()
                    not in ("proxy-connection", "connection", "keep-alive", "proxy-authorization")
                ]
                request = [f"{method} {path} {version}", *kept, "Connection: close", "", ""]
                up_writer.write("\r\n".join(request).encode("latin-1"))
                await up_writer.drain()
            await asyncio.gather(_pipe(reader, up_writer), _pipe(up_reader, writer))
        finally:
            with contextlib.suppress(Exception):
                up_writer.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(Exception):
            if writer.can_write_eof():
                writer.write_eof()


async def _answer(writer: asyncio.StreamWriter, status: int, reason: str) -> None:
    body = f"Refused by the node's browser policy: {reason}\n".encode()
    head = (
        f"HTTP/1.1 {status} Refused\r\nContent-Type: text/plain\r\n"
        f"{REFUSED_HEADER}: {reason.encode('ascii', 'replace').decode()[:300]}\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    ).encode()
    writer.write(head + body)
    with contextlib.suppress(Exception):
        await writer.drain()
