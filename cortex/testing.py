"""The one way the tests wait for something: poll a condition until it holds or a deadline passes.

Tests drive real processes (hubs, agents, Chromium) on a shared machine, so they never sleep a fixed
time and assert; they poll with a generous deadline instead. `wait_until` is the blocking form,
`wait_until_async` the form for a running event loop (its predicate may be a coroutine function).
"""

from __future__ import annotations

import asyncio
import inspect
import time
from collections.abc import Callable
from typing import Any, Union

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
