"""The one way the tests wait for something: poll a condition until it holds or a deadline passes.

Tests drive real processes (hubs, agents, Chromium) on a shared machine, so they never sleep a fixed
time and assert; they poll with a generous deadline instead. `wait_until` is the blocking form,
`wait_until_async` the form for a running event loop (its predicate may be a coroutine function).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Union

import psutil

#: Union, not `|`: the agent's unit tests import this module on Python 3.9 too.
Message = Union[str, Callable[[], str]]  # noqa: UP007


def _failure(message: Message, timeout: float, last: BaseException | None) -> AssertionError:
    text = message() if callable(message) else message
    error = AssertionError(f"{text} (not within {timeout:g} s)")
    error.__cause__ = last
    return error


def wait_until(
    predicate: Callable[[], Any],
    *,
    timeout: float = 30.0,
    interval: float = 0.2,
    message: Message = "condition not met",
    ignore: tuple[type[BaseException], ...] = (),
    sleep: Callable[[float], object] = time.sleep,
) -> Any:
    """Call `predicate` until it returns something truthy, and return that.

    Exceptions of the `ignore` types count as "not yet" (a server that is still starting refuses
    connections). Past `timeout` seconds it raises AssertionError with `message` (a callable
    message is evaluated then, so it can carry a log tail or the page's text). A Playwright page
    passes its own `sleep` (`lambda s: page.wait_for_timeout(s * 1000)`) so that its events run.
    """
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while True:
        try:
            value = predicate()
        except ignore as exc:
            last = exc
        else:
            if value:
                return value
        if time.monotonic() >= deadline:
            raise _failure(message, timeout, last)
        sleep(interval)


async def wait_until_async(
    predicate: Callable[[], Any],
    *,
    timeout: float = 30.0,
    interval: float = 0.1,
    message: Message = "condition not met",
    ignore: tuple[type[BaseException], ...] = (),
) -> Any:
    """`wait_until` for code on an event loop: sleeps without blocking the loop, and awaits the
    predicate's result when it is awaitable (so a coroutine function works as a predicate)."""
    deadline = time.monotonic() + timeout
    last: BaseException | None = None
    while True:
        try:
            value = predicate()
            if inspect.isawaitable(value):
                value = await value
        except ignore as exc:
            last = exc
        else:
            if value:
                return value
        if time.monotonic() >= deadline:
            raise _failure(message, timeout, last)
        await asyncio.sleep(interval)


def child_processes(pid: int, *, recursive: bool = False) -> dict[int, str]:
    """The running children of `pid` by pid, with their names; zombies left out.

    A child can exit between being listed and being asked its name (a test that waits for a
    process to stop asks exactly then), so a process that is gone counts as not there, never as an
    error; so does a parent that is gone.
    """
    try:
        children = psutil.Process(pid).children(recursive=recursive)
    except psutil.Error:
        return {}
    found: dict[int, str] = {}
    for child in children:
        with contextlib.suppress(psutil.Error):
            if child.status() != psutil.STATUS_ZOMBIE:
                found[child.pid] = child.name()
    return found


def process_gone(pid: int) -> bool:
    """True once `pid` has exited (a zombie not yet reaped counts as exited)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@dataclass(frozen=True)
class Page:
    """One resource of a `loopback_site`; `attachment` names a download (Content-Disposition)."""

    body: bytes
    content_type: str = "text/html; charset=utf-8"
    attachment: str | None = None


@contextlib.contextmanager
def loopback_site(pages: Mapping[str, Page]) -> Iterator[str]:
    """Serve `pages` (path -> Page; 404 elsewhere) on 127.0.0.1 in a thread: the small sites the
    browser tests drive. Yields the base URL, without a trailing slash."""

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            return

        def do_GET(self) -> None:  # noqa: N802
            page = pages.get(self.path)
            if page is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", page.content_type)
            self.send_header("Content-Length", str(len(page.body)))
            if page.attachment is not None:
                disposition = f'attachment; filename="{page.attachment}"'
                self.send_header("Content-Disposition", disposition)
            self.end_headers()
            self.wfile.write(page.body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
