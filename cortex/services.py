"""Shared service helpers used by every app."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, ParamSpec, TypeVar

from asgiref.sync import sync_to_async
from django.db import close_old_connections, models

M = TypeVar("M", bound=models.Model)
P = ParamSpec("P")
R = TypeVar("R")


def db_unit(
    fn: Callable[P, R],
    *,
    thread_sensitive: bool = True,
    around: Callable[[], contextlib.AbstractAsyncContextManager[Any]] | None = None,
) -> Callable[P, Awaitable[R]]:
    """Run a sync service from async code as one unit of database work, in a worker thread.

    Connections are checked before and after, as Django does around a request, so a long
    stream or turn never holds a stale or broken connection. `thread_sensitive=False` runs it
    off the shared sync thread (work that may block for long must not stall the rest);
    `around` wraps the await on the loop (the mesh collects the unit's live frames there).
    """

    def unit(*args: P.args, **kwargs: P.kwargs) -> R:
        close_old_connections()
        try:
            return fn(*args, **kwargs)
        finally:
            close_old_connections()

    runner = sync_to_async(unit, thread_sensitive=thread_sensitive)

    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        if around is None:
            return await runner(*args, **kwargs)
        async with around():
            return await runner(*args, **kwargs)

    return wrapper


def model_update(*, instance: M, fields: Iterable[str], data: dict[str, Any]) -> tuple[M, bool]:
    """Set the listed fields that appear in `data`, validate, and save only those.

    Returns the instance and whether anything changed; unknown keys in `data` are ignored so
    callers can pass validated input straight through.
    """
    changed: list[str] = []
    for field in fields:
        if field in data and getattr(instance, field) != data[field]:
            setattr(instance, field, data[field])
            changed.append(field)
    if changed:
        instance.full_clean()
        if any(f.name == "updated_at" for f in instance._meta.get_fields()):
            changed.append("updated_at")
        instance.save(update_fields=changed)
    return instance, bool(changed)


def db_unit_long(fn: Callable[P, R]) -> Callable[P, Awaitable[R]]:
    """`db_unit` for work that may block for minutes (a chat turn's tool call waiting on a node,
    an agent run): off the shared sync thread, so it never stalls other work queued there."""
    return db_unit(fn, thread_sensitive=False)
