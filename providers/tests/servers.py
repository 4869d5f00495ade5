"""Loopback HTTP servers that speak the providers' protocols, for verify tests."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

OPENAI_CHAT = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1700000000,
    "model": "test-model",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "p"},
            "finish_reason": "length",
        }
    ],
    "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
}
OPENAI_MODEL = {"id": "test-model", "object": "model", "created": 1700000000, "owned_by": "me"}
ANTHROPIC_MESSAGE = {
    "id": "msg_1",
    "type": "message",
    "role": "assistant",
    "model": "test-model",
    "content": [{"type": "text", "text": "p"}],
    "stop_reason": "max_tokens",
    "stop_sequence": None,
    "usage": {"input_tokens": 1, "output_tokens": 1},
}
GEMINI_GENERATE = {
    "candidates": [{"content": {"role": "model", "parts": [{"text": "p"}]}, "index": 0}],
    "usageMetadata": {"promptTokenCount": 1, "candidatesTokenCount": 1},
}
GEMINI_MODEL = {"name": "models/test-model", "displayName": "Test"}


@dataclass
class ProviderServer:
    """One server; `mode` is ok, unauthorized, forbidden, missing, hang, redirect or error."""

    mode: str = "ok"
    redirect_to: str = "http://169.254.169.254/latest/meta-data/"
    known_model: str = "test-model"
    requests: list[dict[str, Any]] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)
    url: str = ""

    def body_for(self, method: str, path: str) -> dict[str, Any]:
        if path.endswith("/chat/completions"):
            return OPENAI_CHAT
        if path.endswith("/messages"):
            return ANTHROPIC_MESSAGE
        if path.endswith(":generateContent"):
            return GEMINI_GENERATE
        if "/v1beta/models/" in path:
            return GEMINI_MODEL
        return OPENAI_MODEL

    def model_of(self, path: str, payload: dict[str, Any]) -> str:
        if "model" in payload:
            return str(payload["model"])
        tail = path.rsplit("/models/", 1)[-1]
        return tail.split(":", 1)[0]


def _handler(server: ProviderServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            return

        def _answer(self, status: int, body: dict[str, Any], headers: dict[str, str]) -> None:
            raw = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            for name, value in headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(raw)

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            payload = json.loads(raw) if raw else {}
            server.requests.append(
                {
                    "method": self.command,
                    "path": self.path,
                    "headers": {k.lower(): v for k, v in self.headers.items()},
                    "body": payload,
                }
            )
            mode = server.mode
            # "hang" answers late rather than dropping the connection: a client that ignored its
            # timeout would see a success, so "unreachable" proves the timeout held.
            if mode == "hang" and server.release.wait(10):
                return
            if mode == "redirect":
                self._answer(307, {}, {"Location": server.redirect_to})
                return
            if mode in ("unauthorized", "forbidden"):
                status = 401 if mode == "unauthorized" else 403
                self._answer(status, {"error": {"message": "bad key", "type": "auth"}}, {})
                return
            if mode == "error":
                # Careless providers echo credentials in errors; the hub must scrub them.
                echoed = " ".join(
                    self.headers.get(h, "")
                    for h in ("authorization", "x-api-key", "x-goog-api-key")
                )
                self._answer(500, {"error": {"message": f"boom for {echoed}"}}, {})
                return
            if server.model_of(self.path.split("?")[0], payload) != server.known_model:
                self._answer(404, {"error": {"message": "no such model"}}, {})
                return
            self._answer(200, server.body_for(self.command, self.path), {})

        do_GET = _handle  # noqa: N815
        do_POST = _handle  # noqa: N815

    return Handler


@contextmanager
def provider_server(mode: str = "ok", **kwargs: Any) -> Iterator[ProviderServer]:
    """Serve on 127.0.0.1 in a thread; always shut down, releasing hanging handlers first."""
    state = ProviderServer(mode=mode, **kwargs)
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    httpd.daemon_threads = True
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield state
    finally:
        state.release.set()
        httpd.shutdown()
        httpd.server_close()
        thread.join(timeout=5)
