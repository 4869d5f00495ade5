"""Which exceptions mean "a dependency is down" (PostgreSQL, Redis), and what callers answer.

An outage of the database or the channel layer costs latency, never a 500: HTTP answers 503
with `Retry-After`, WebSockets close with 1013 (try again later), and long-lived loops
(runmesh streams, heartbeat flushes, output pumps) back off and retry.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

from django.db import InterfaceError, OperationalError

from cortex import errors

logger = logging.getLogger("cortex.faults")

T = TypeVar("T")

#: Seconds a client is asked to wait (Retry-After) while a dependency is down.
RETRY_AFTER_SECONDS = 5


class DatabaseUnavailable(errors.Unavailable):
    code = "database_unavailable"
    default_message = "The database is unavailable; try again shortly."
    retry_after = RETRY_AFTER_SECONDS


class ChannelLayerUnavailable(errors.Unavailable):
    code = "channel_layer_unavailable"
    default_message = "The channel layer is unavailable; try again shortly."
    retry_after = RETRY_AFTER_SECONDS


def _psycopg_outage(exc: BaseException) -> bool:
    try:
        import psycopg
    except ImportError:  # SQLite-only install
        return False
    return isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError)


def is_database_outage(exc: BaseException | None) -> bool:
    """Whether `exc` means the database could not be reached or dropped the connection.

    Django wraps driver errors in its own `OperationalError`/`InterfaceError` (a pool timeout,
    a refused connection, "terminating connection due to administrator command", SQLite's
    "database is locked"); a statement the database refused (IntegrityError, ...) is not one.
    """
    seen = 0
    while exc is not None and seen < 5:
        if isinstance(exc, OperationalError | InterfaceError) or _psycopg_outage(exc):
            return True
        exc = exc.__cause__
        seen += 1
    return False


def is_channel_layer_outage(exc: BaseException | None) -> bool:
    """Whether `exc` means Redis (channel layer or cache) could not be reached."""
    try:
        from redis import exceptions as redis_errors
    except ImportError:
        return False
    return isinstance(exc, redis_errors.ConnectionError | redis_errors.TimeoutError)


def unavailable_for(exc: BaseException | None) -> errors.Unavailable | None:
    """The 503 error for a dependency outage, or None for any other exception."""
    if is_database_outage(exc):
        return DatabaseUnavailable()
    if is_channel_layer_outage(exc):
        return ChannelLayerUnavailable()
    return None


async def retry_while_down(
    call: Callable[[], Awaitable[T]],
    *,
    what: str,
    give_up: Callable[[], bool] = lambda: False,
    first_delay: float = 0.2,
    max_delay: float = 5.0,
) -> T:
    """Await `call()`; while it fails with a database outage, back off and call it again.

    For long-lived loops whose work is idempotent (output stored by `seq`, a result recorded
    once): the loop survives the outage instead of ending its stream. Stops retrying (and
    raises the outage) once `give_up()` is true, so a closed stream does not spin; any other
    error is raised at once.
    """
    delay = first_delay
    logged = False
    while True:
        try:
            result = await call()
        except Exception as exc:
            if not is_database_outage(exc) or give_up():
                raise
            if not logged:
                logger.warning("%s: database unavailable; retrying with back-off", what)
                logged = True
            await asyncio.sleep(delay * random.uniform(0.8, 1.2))
            delay = min(max_delay, delay * 2)
            continue
        if logged:
            logger.info("%s: database back", what)
        return result
