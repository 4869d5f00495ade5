"""cortex.services: db_unit and db_unit_long run sync services from async code."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import AsyncIterator

import pytest
from django.db import connection

from cortex.services import db_unit, db_unit_long

pytestmark = pytest.mark.django_db(transaction=True)


async def test_db_unit_runs_off_the_loop_and_returns_or_raises():
    loop_thread = threading.get_ident()

    def add(a: int, *, b: int) -> tuple[int, int]:
        """Adds."""
        return a + b, threading.get_ident()

    def fail() -> None:
        raise LookupError("from the unit")

    unit = db_unit(add)
    assert unit.__name__ == "add" and unit.__doc__ == "Adds."
    total, worker = await unit(2, b=3)
    assert total == 5 and worker != loop_thread
    with pytest.raises(LookupError, match="from the unit"):
        await db_unit(fail)()


async def test_db_unit_closes_a_connection_past_its_age_after_the_unit():
    def open_and_expire():  # type: ignore[no-untyped-def]
        connection.ensure_connection()
        connection.close_at = 0  # past CONN_MAX_AGE: Django closes it at the next check
        return connection

    used = await db_unit(open_and_expire)()
    assert used.connection is None  # closed by the check after the unit, not left stale


async def test_db_unit_around_wraps_the_await_on_the_loop():
    seen: list[str] = []

    @contextlib.asynccontextmanager
    async def around() -> AsyncIterator[None]:
        seen.append("enter")
        yield
        seen.append("exit")

    def work() -> str:
        seen.append("work")
        return "done"

    assert await db_unit(work, around=around)() == "done"
    assert seen == ["enter", "work", "exit"]


async def test_db_unit_long_runs_beside_other_units_not_behind_them():
    """Two long units meet while both are running: neither waits for the shared sync thread."""
    import asyncio

    first_in, second_in = threading.Event(), threading.Event()
    threads: dict[str, int] = {}

    def first() -> bool:
        threads["first"] = threading.get_ident()
        first_in.set()
        return second_in.wait(60)

    def second() -> bool:
        threads["second"] = threading.get_ident()
        second_in.set()
        return first_in.wait(60)

    met = await asyncio.gather(db_unit_long(first)(), db_unit_long(second)())
    assert list(met) == [True, True]
    assert threads["first"] != threads["second"]
