"""Loopback servers speaking the OpenAI audio and Gemini generateContent protocols."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

#: 0.25 s of a 440 Hz-ish square wave at 24 kHz: what the fake providers "say".
PROVIDER_PCM = (b"\x00\x10" * 27 + b"\x00\xf0" * 27) * 111
TRANSCRIPT = "hello from the loopback provider"


@dataclass
class AudioServer:
    """`mode`: ok, unauthorized, rate_limited, error (echoes the key), hang, bad_key_400 or
    second_fails (the first request succeeds, later ones fail)."""

    mode: str = "ok"
    requests: list[dict[str, Any]] = field(default_factory=list)
    release: threading.Event = field(default_factory=threading.Event)
    url: str = ""


def _multipart(content_type: str, raw: bytes) -> dict[str, Any]:
    message = BytesParser(policy=HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + raw
    )
    parts: dict[str, Any] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        parts[name] = {
            "filename": part.get_filename(),
            "content_type": part.get_content_type(),
            "data": payload,
        }
    return parts


def _handler(server: AudioServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            return

        def _send(self, status: int, body: bytes, content_type: str, **headers: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for name, value in headers.items():
                self.send_header(name.replace("_", "-"), value)
            self.end_headers()
            self.wfile.write(body)

        def _json(self, status: int, body: dict[str, Any], **headers: str) -> None:
            self._send(status, json.dumps(body).encode(), "application/json", **headers)

        def do_POST(self) -> None:  # noqa: N802
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            content_type = self.headers.get("Content-Type", "")
            if content_type.startswith("multipart/"):
                body: Any = _multipart(content_type, raw)
            else:
                body = json.loads(raw) if raw else {}
            path = self.path.split("?")[0]
            server.requests.append(
                {
                    "path": path,
                    "headers": {k.lower(): v for k, v in self.headers.items()},
                    "body": body,
                }
            )
            mode = server.mode
            if mode == "second_fails":
                mode = "ok" if len(server.requests) == 1 else "error"
            if mode == "hang":
                server.release.wait(10)
                return
            if mode == "unauthorized":
                self._json(401, {"error": {"message": "Incorrect API key provided"}})
                return
            if mode == "bad_key_400":
                self._json(400, {"error": {"status": "INVALID_ARGUMENT", "details": [
                    {"reason": "API_KEY_INVALID"}]}})  # fmt: skip
                return
            if mode == "rate_limited":
                self._json(429, {"error": {"message": "slow down"}}, Retry_After="7")
                return
            if mode == "error":
                echoed = self.headers.get("authorization", "") + self.headers.get(
                    "x-goog-api-key", ""
                )
                self._json(500, {"error": {"message": f"boom for {echoed}"}})
                return
            if path.endswith("/audio/speech"):
                self._send(200, PROVIDER_PCM, "application/octet-stream")
            elif path.endswith("/audio/transcriptions"):
                self._json(200, {"text": TRANSCRIPT})
            elif path.endswith(":generateContent"):
                config = body.get("generationConfig") or {}
                part: dict[str, Any]
                if "AUDIO" in (config.get("responseModalities") or []):
                    part = {
                        "inlineData": {
                            "mimeType": "audio/L16;codec=pcm;rate=24000",
                            "data": base64.b64encode(PROVIDER_PCM).decode(),
                        }
                    }
                else:
                    part = {"text": TRANSCRIPT}
                self._json(200, {"candidates": [{"content": {"role": "model", "parts": [part]}}]})
            else:
                self._json(404, {"error": {"message": "no such route"}})

    return Handler


@contextmanager
def audio_server(mode: str = "ok") -> Iterator[AudioServer]:
    """Serve on 127.0.0.1 in a thread; always shut down, releasing hanging handlers first."""
    state = AudioServer(mode=mode)
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
