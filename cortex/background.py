"""Background loops every web process runs (serve, daphne), started once per event loop.

Daphne has no start-up hook: `AdoptLoop` (cortex/patches/asgiref_loops.py) starts them on the
first connection, which is its health check; `serve` starts them before it listens.
"""

from __future__ import annotations

import asyncio
import weakref

from django.utils.module_loading import import_string

#: Dotted paths of `start()` callables that create their task on the running loop.
BACKGROUND = ("agents.scheduler.scheduler_start",)

_started: weakref.WeakSet[asyncio.AbstractEventLoop] = weakref.WeakSet()


def background_start() -> None:
    """Start the process's background loops on the running loop (once per loop; later calls
    cost one set lookup, so the middleware may call this on every connection)."""
    loop = asyncio.get_running_loop()
    if loop in _started:
        return
    _started.add(loop)
    for path in BACKGROUND:
        import_string(path)()
