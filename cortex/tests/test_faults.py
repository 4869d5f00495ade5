"""What counts as an outage, the back-off of long-lived loops, and the pool's reconnect delay."""

from __future__ import annotations

import psycopg
import pytest
import redis
from django.db import IntegrityError, InterfaceError, OperationalError, ProgrammingError

from cortex import faults
from cortex.patches.postgresql.base import RECONNECT_MAX_DELAY, _CappedAttempt


def _wrapped(cause: BaseException, outer: type[Exception]) -> Exception:
    try:
        try:
            raise cause
        except BaseException as exc:
            raise outer("wrapped") from exc
    except Exception as exc:
        return exc


@pytest.mark.parametrize(
    "exc",
    [
        OperationalError("terminating connection due to administrator command"),
        InterfaceError("connection already closed"),
        psycopg.OperationalError("connection refused"),
        _wrapped(psycopg.OperationalError("server closed the connection"), RuntimeError),
    ],
)
def test_connection_errors_are_database_outages(exc):
    assert faults.is_database_outage(exc)
    assert isinstance(faults.unavailable_for(exc), faults.DatabaseUnavailable)


@pytest.mark.parametrize(
    "exc",
    [IntegrityError("duplicate key"), ProgrammingError("syntax"), ValueError("x"), None],
)
def test_other_errors_are_not_outages(exc):
    assert not faults.is_database_outage(exc)
    assert faults.unavailable_for(exc) is None


@pytest.mark.parametrize(
    "exc", [redis.exceptions.ConnectionError("refused"), redis.exceptions.TimeoutError("slow")]
)
def test_redis_connection_errors_are_channel_layer_outages(exc):
    error = faults.unavailable_for(exc)
    assert isinstance(error, faults.ChannelLayerUnavailable)
    assert (error.code, error.retry_after) == ("channel_layer_unavailable", 5)


def test_database_unavailable_is_a_503_with_retry_after():
    from cortex.api.exceptions import status_for

    error = faults.DatabaseUnavailable()
    assert (error.code, status_for(error), error.retry_after) == ("database_unavailable", 503, 5)


async def test_retry_while_down_outlives_an_outage():
    attempts = []

    async def unit() -> str:
        attempts.append(1)
        if len(attempts) < 3:
            raise OperationalError("the database system is starting up")
        return "stored"

    assert await faults.retry_while_down(unit, what="test", first_delay=0.001) == "stored"
    assert len(attempts) == 3


async def test_retry_while_down_raises_other_errors_at_once():
    attempts = []

    async def unit() -> None:
        attempts.append(1)
        raise IntegrityError("duplicate key")

    with pytest.raises(IntegrityError):
        await faults.retry_while_down(unit, what="test", first_delay=0.001)
    assert len(attempts) == 1


async def test_retry_while_down_stops_when_told_to_give_up():
    attempts = []

    async def unit() -> None:
        attempts.append(1)
        raise OperationalError("connection refused")

    with pytest.raises(OperationalError):
        await faults.retry_while_down(
            unit, what="test", first_delay=0.001, give_up=lambda: len(attempts) >= 2
        )
    assert len(attempts) == 2


def test_pool_reconnect_delay_is_capped_through_a_long_outage():
    attempt = _CappedAttempt(timeout=24 * 3600.0)
    delays = []
    for step in range(20):
        attempt.update_delay(now=float(step))
        delays.append(attempt.delay)
    assert max(delays) == RECONNECT_MAX_DELAY
    assert not attempt.time_to_give_up(now=20.0)
