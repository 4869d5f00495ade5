"""Event loops that live as long as their process (the ASGI server's, runmesh's).

Sync code run from such a loop (`sync_to_async`) may hand it work and go on, instead of
blocking on a hop into the loop and back (`async_to_sync`): a REST request that dispatches a
task need not wait for Redis to hear the doorbell. A loop that may close soon (a test's, a
management command's `async_to_sync`) is never adopted, so nothing handed over is dropped.
"""

from __future__ import annotations

import asyncio
import os
import weakref
from collections.abc import Callable
from typing import Any

from asgiref.sync import SyncToAsync

_adopted: weakref.WeakSet[asyncio.AbstractEventLoop] = weakref.WeakSet()


def adopt_running_loop() -> None:
    """Mark the running loop as one that lives as long as the process."""
    _adopted.add(asyncio.get_running_loop())


def call_in_home_loop(callback: Callable[..., Any], *args: Any) -> bool:
    """Schedule `callback(*args)` on the adopted loop this sync thread runs for; False when
    there is none (the caller does the work itself)."""
    local = SyncToAsync.threadlocal
    loop = getattr(local, "main_event_loop", None)
    if loop is None or getattr(local, "main_event_loop_pid", None) != os.getpid():
        return False
    if loop not in _adopted or loop.is_closed():
        return False
    try:
        loop.call_soon_threadsafe(callback, *args)
    except RuntimeError:  # closed meanwhile
        return False
    return True


#: Background loops every web process runs (dotted paths of `start()` callables that create
#: their task on the running loop, once per loop).
BACKGROUND = ("agents.scheduler.scheduler_start",)


_background: weakref.WeakSet[asyncio.AbstractEventLoop] = weakref.WeakSet()


def start_background() -> None:
    """Start the process's background loops on the running loop (once per loop; later calls
    cost one set lookup, so the middleware may call this on every connection)."""
    loop = asyncio.get_running_loop()
    if loop in _background:
        return
    _background.add(loop)
    from django.utils.module_loading import import_string

    for path in BACKGROUND:
        import_string(path)()


class AdoptLoop:
    """ASGI middleware: the server's loop is adopted on its first connection, and the
    background loops start there (daphne has no start-up hook; its health check is the first
    connection)."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> Any:
        if scope.get("type") != "lifespan":
            adopt_running_loop()
            start_background()
        return await self.app(scope, receive, send)
