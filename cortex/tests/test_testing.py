"""The tests' one polling helper (cortex/testing.py): what it returns, when it gives up, and what
it says then."""

from __future__ import annotations

import asyncio

import pytest

from cortex.testing import wait_until, wait_until_async


def test_returns_the_first_truthy_value():
    answers = iter([None, 0, "", "ready"])
    assert wait_until(lambda: next(answers), timeout=5, interval=0) == "ready"


def test_gives_up_with_the_message_evaluated_at_the_deadline():
    seen: list[int] = []
    said: list[int] = []

    def message() -> str:
        said.append(len(seen))
        return "the log tail"

    with pytest.raises(AssertionError, match=r"the log tail \(not within 0.2 s\)"):
        wait_until(lambda: seen.append(1), timeout=0.2, interval=0.01, message=message)
    assert said == [len(seen)]  # evaluated once, after the last poll
    assert len(seen) >= 2  # polled before the deadline and once more at it


def test_ignored_errors_count_as_not_yet_and_other_errors_end_the_wait():
    calls = iter([OSError("refused"), OSError("refused"), "up"])

    def probe() -> object:
        value = next(calls)
        if isinstance(value, Exception):
            raise value
        return value

    assert wait_until(probe, timeout=5, interval=0, ignore=(OSError,)) == "up"
    with pytest.raises(ZeroDivisionError):
        wait_until(lambda: 1 / 0, timeout=5, ignore=(OSError,))


def test_a_wait_that_never_succeeds_keeps_the_last_ignored_error_as_its_cause():
    def refused() -> None:
        raise ConnectionRefusedError("nobody listens")

    with pytest.raises(AssertionError, match="never up") as failed:
        wait_until(refused, timeout=0.02, interval=0.005, message="never up", ignore=(OSError,))
    assert isinstance(failed.value.__cause__, ConnectionRefusedError)


async def test_the_async_twin_takes_plain_and_coroutine_predicates():
    flag = {"n": 0}

    def plain() -> bool:
        flag["n"] += 1
        return flag["n"] >= 3

    async def coroutine() -> str | None:
        await asyncio.sleep(0)
        return "done" if flag["n"] >= 3 else None

    assert await wait_until_async(plain, timeout=5, interval=0) is True
    assert await wait_until_async(coroutine, timeout=5) == "done"
    with pytest.raises(AssertionError, match="still no"):
        await wait_until_async(
            lambda: asyncio.sleep(0, result=None), timeout=0.02, message="still no"
        )
