"""Background loops every web process runs (serve, daphne), started once per event loop.

Daphne has no start-up hook: `AdoptLoop` (cortex/patches/asgiref_loops.py) starts them on the
first connection, which is its health check; `serve` starts them before it listens.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import weakref
from typing import Any

from django.utils.module_loading import import_string

#: Dotted paths of `start()` callables that create their task on the running loop.
BACKGROUND = ("agents.scheduler.scheduler_start",)

#: Dotted paths of async `stop()` callables a clean shutdown awaits (hand work over at once).
STOPS = ("agents.scheduler.scheduler_stop",)

logger = logging.getLogger("cortex.background")

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
    _stop_with_twisted(loop)


async def background_stop() -> None:
    """Stop the process's background loops cleanly (SIGTERM): each hands its work over."""
    for path in STOPS:
        try:
            await import_string(path)()
        except Exception:
            logger.exception("background stop %s failed", path)


def _stop_with_twisted(loop: asyncio.AbstractEventLoop) -> None:
    """Under daphne (Twisted's asyncio reactor on this loop), run `background_stop` before
    the reactor shuts down (its SIGTERM handler stops the reactor and waits for these)."""
    reactor = sys.modules.get("twisted.internet.reactor")
    if reactor is None or getattr(reactor, "_asyncioEventloop", None) is not loop:
        return
    from twisted.internet.defer import Deferred

    def before_shutdown() -> Any:
        return Deferred.fromFuture(asyncio.ensure_future(background_stop()))

    reactor.addSystemEventTrigger("before", "shutdown", before_shutdown)
