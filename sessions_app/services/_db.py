"""Run sync database work from the turn's async code, one unit at a time."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar

from asgiref.sync import sync_to_async
from django.db import close_old_connections

P = ParamSpec("P")
R = TypeVar("R")


def db(fn: Callable[P, R]) -> Callable[P, Awaitable[R]]:
    """`fn` in a worker thread with fresh connections around it.

    Not thread-sensitive on purpose: a tool call may block for minutes waiting on a node and
    must not stall other turns' database work queued behind it on one shared thread.
    """

    def unit(*args: P.args, **kwargs: P.kwargs) -> R:
        close_old_connections()
        try:
            return fn(*args, **kwargs)
        finally:
            close_old_connections()

    runner = sync_to_async(unit, thread_sensitive=False)

    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        return await runner(*args, **kwargs)

    return wrapper
