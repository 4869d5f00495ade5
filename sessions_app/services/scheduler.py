"""Start a turn outside the request, on the event loop of the web process.

Under `serve`, uvicorn and daphne a sync view runs in a worker thread that asgiref links to
the server's loop; the turn becomes a task on that loop, beside the consumers it feeds. Where
there is no server loop (WSGI, the test client, a shell) a daemon thread runs a loop of its
own. Tasks are kept in a set only so they are not garbage-collected; the truth about a turn
is its message row, and a turn whose process dies is ended by `turns_reap_stale`.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading

from asgiref.sync import SyncToAsync

logger = logging.getLogger("cortex.sessions")

_tasks: set[asyncio.Task[None]] = set()
_fallback_lock = threading.Lock()
_fallback_loop: asyncio.AbstractEventLoop | None = None


def _spawn(assistant_message_id: int) -> None:
    from sessions_app.services.turn_runner import turn_run

    task = asyncio.get_running_loop().create_task(
        turn_run(assistant_message_id=assistant_message_id)
    )
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)


def _server_loop() -> asyncio.AbstractEventLoop | None:
    local = SyncToAsync.threadlocal
    if getattr(local, "main_event_loop_pid", None) != os.getpid():
        return None
    loop: asyncio.AbstractEventLoop | None = getattr(local, "main_event_loop", None)
    if loop is None or loop.is_closed() or not loop.is_running():
        return None
    return loop


def _fallback() -> asyncio.AbstractEventLoop:
    global _fallback_loop
    with _fallback_lock:
        if _fallback_loop is None or _fallback_loop.is_closed():
            loop = asyncio.new_event_loop()
            thread = threading.Thread(target=loop.run_forever, name="cortex-turns", daemon=True)
            thread.start()
            _fallback_loop = loop
        return _fallback_loop


def turn_schedule(*, assistant_message_id: int) -> None:
    """Run the turn of `assistant_message_id` in the background; returns at once."""
    try:
        running = asyncio.get_running_loop()
    except RuntimeError:
        running = None
    if running is not None:
        _spawn(assistant_message_id)
        return
    loop = _server_loop() or _fallback()
    loop.call_soon_threadsafe(_spawn, assistant_message_id)
