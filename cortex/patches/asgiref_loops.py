"""Event loops that live as long as their process (the ASGI server's, runmesh's).

Sync code run from such a loop (`sync_to_async`) may hand it work and go on, instead of
blocking on a hop into the loop and back (`async_to_sync`): a REST request that dispatches a
task need not wait for Redis to hear the doorbell. A loop that may close soon (a test's, a
management command's `async_to_sync`) is never adopted, so nothing handed over is dropped.

The patch: asgiref does not say which loop a sync thread works for; `SyncToAsync` records it
in its thread-local (`main_event_loop`, `main_event_loop_pid`) when it starts the thread's
work, and this module reads it there (`RELIES_ON`).
"""

from __future__ import annotations

import asyncio
import os
import weakref
from collections.abc import Callable
from typing import Any

from asgiref.sync import SyncToAsync

from cortex.background import background_start

LIBRARY = "asgiref"
PINNED_VERSION = "3.13.0"
RELIES_ON = (
    "asgiref.sync.SyncToAsync.threadlocal",
    "asgiref.sync.SyncToAsync.threadlocal.main_event_loop",
    "asgiref.sync.SyncToAsync.threadlocal.main_event_loop_pid",
)

_adopted: weakref.WeakSet[asyncio.AbstractEventLoop] = weakref.WeakSet()


def adopt_running_loop() -> None:
    """Mark the running loop as one that lives as long as the process."""
    _adopted.add(asyncio.get_running_loop())


def thread_loop() -> asyncio.AbstractEventLoop | None:
    """The event loop this sync thread does work for (`sync_to_async` recorded it), if any and
    still open; the only reader of asgiref's thread-local."""
    local = SyncToAsync.threadlocal
    loop = getattr(local, "main_event_loop", None)
    if loop is None or getattr(local, "main_event_loop_pid", None) != os.getpid():
        return None
    return None if loop.is_closed() else loop


def call_in_home_loop(callback: Callable[..., Any], *args: Any) -> bool:
    """Schedule `callback(*args)` on the adopted loop this sync thread runs for; False when
    there is none (the caller does the work itself)."""
    loop = thread_loop()
    if loop is None or loop not in _adopted:
        return False
    try:
        loop.call_soon_threadsafe(callback, *args)
    except RuntimeError:  # closed meanwhile
        return False
    return True


class AdoptLoop:
    """ASGI middleware: the server's loop is adopted on its first connection, and the
    background loops start there (daphne has no start-up hook; its health check is the first
    connection)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> Any:
        if scope.get("type") != "lifespan":
            adopt_running_loop()
            background_start()
        return await self.app(scope, receive, send)
