"""A real HTTP server on loopback that speaks provider streaming protocols, scripted per test.

Each POST takes the next step of the script: stream these SSE events, answer this status, or
hang. Every request body (and its headers) is recorded for assertions.
"""

from __future__ import annotations

import json
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Step:
    kind: str  # "sse" | "status" | "hang"
    events: list[Any] = field(default_factory=list)
    status: int = 200
    body: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0  # between SSE events


class ScriptedLLM:
    def __init__(self) -> None:
        self.script: deque[Step] = deque()
        self.requests: list[dict[str, Any]] = []
        self.stop = threading.Event()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
                return

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("content-length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                server.requests.append(
                    {"path": self.path, "headers": dict(self.headers.items()), "body": body}
                )
                step = server.script.popleft() if server.script else Step("status", status=500)
                if step.kind == "hang":
                    server.stop.wait(60)
                    return
                if step.kind == "status":
                    payload = json.dumps(step.body or {"error": {"message": "scripted"}}).encode()
                    self.send_response(step.status)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(payload)))
                    for k, v in step.headers.items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                self.send_response(200)
                self.send_header("content-type", "text/event-stream")
                self.send_header("cache-control", "no-cache")
                self.send_header("connection", "close")
                self.end_headers()
                for event in step.events:
                    if server.stop.is_set():
                        return
                    data = event if isinstance(event, str) else json.dumps(event)
                    try:
                        self.wfile.write(f"data: {data}\n\n".encode())
                        self.wfile.flush()
                    except OSError:
                        return
                    if step.delay:
                        time.sleep(step.delay)
                self.close_connection = True

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> ScriptedLLM:
        self.thread.start()
        return self

    def close(self) -> None:
        self.stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)

    def add(self, step: Step) -> None:
        self.script.append(step)


# -- OpenAI chat-completions chunks ---------------------------------------------------------


def _chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "test-model",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


def _usage(prompt: int, completion: int) -> dict[str, Any]:
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion.chunk",
        "created": 1,
        "model": "test-model",
        "choices": [],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion,
            "total_tokens": prompt + completion,
        },
    }


def openai_text(parts: list[str], *, usage: tuple[int, int] = (11, 7), delay: float = 0.0) -> Step:
    events: list[Any] = [_chunk({"role": "assistant", "content": ""})]
    events += [_chunk({"content": p}) for p in parts]
    events += [_chunk({}, "stop"), _usage(*usage), "[DONE]"]
    return Step("sse", events=events, delay=delay)


def openai_tool_call(
    calls: list[tuple[str, str, str]], *, text: str = "", usage: tuple[int, int] = (20, 5)
) -> Step:
    """calls: (id, name, arguments JSON text) streamed in two halves each."""
    events: list[Any] = [_chunk({"role": "assistant", "content": text or None})]
    for index, (call_id, name, args) in enumerate(calls):
        half = len(args) // 2
        events.append(
            _chunk(
                {
                    "tool_calls": [
                        {
                            "index": index,
                            "id": call_id,
                            "type": "function",
                            "function": {"name": name, "arguments": args[:half]},
                        }
                    ]
                }
            )
        )
        events.append(
            _chunk({"tool_calls": [{"index": index, "function": {"arguments": args[half:]}}]})
        )
    events += [_chunk({}, "tool_calls"), _usage(*usage), "[DONE]"]
    return Step("sse", events=events)
