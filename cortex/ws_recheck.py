"""One re-check timer per event loop for every open Cortex WebSocket.

A socket used to own a task that slept `WS_RECHECK_SECONDS` and then made two hops to the
database thread (authentication, then grant). With a thousand sockets that is a thousand
sleeping tasks and a thousand hops a second, which cost memory per socket and delayed live
frames queued behind them on the one database thread. Here one timer per loop re-checks all
sockets each round, in a few hops (`CHUNK` sockets each), and sockets that ask the same
question (same user and session; same user and node) share one answer per round. A socket is
still re-checked at least every `WS_RECHECK_SECONDS` (the shortest interval of the sockets
registered), so a revoked grant still closes it within 5 s.
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Callable, Hashable
from functools import partial
from typing import TYPE_CHECKING, Any

from channels.db import database_sync_to_async
from channels.layers import get_channel_layer

from cortex import faults

if TYPE_CHECKING:
    from cortex.consumers import CortexConsumer

logger = logging.getLogger("cortex.ws")

#: Sockets checked per hop to the database thread (other work interleaves between hops).
CHUNK = 200
#: Outcome of one socket's check: None (still allowed) or the close code.
CheckResult = int | None


def _authenticated(user_id: int, session_key: str | None) -> bool:
    """Whether the user is still signed in (active; for a browser, the session still holds)."""
    from cortex.consumers import _active_user, _session_user_id

    if session_key is not None:
        return _session_user_id(session_key) == user_id
    return _active_user(user_id) is not None


@database_sync_to_async
def check_sockets(sockets: list[CortexConsumer]) -> list[CheckResult]:
    """Close code (or None) for each socket; equal questions are answered once."""
    from cortex.consumers import (
        CLOSE_FORBIDDEN,
        CLOSE_SERVER_ERROR,
        CLOSE_TRY_AGAIN,
        CLOSE_UNAUTHENTICATED,
    )

    answers: dict[Hashable, bool | None] = {}  # None: the check itself failed
    failed = CLOSE_SERVER_ERROR

    def ask(key: Hashable, question: Callable[[], Any]) -> bool | None:
        nonlocal failed
        if key not in answers:
            try:
                answers[key] = bool(question())
            except Exception as exc:  # a broken database must not leave the socket unchecked
                if faults.unavailable_for(exc) is None:
                    logger.exception("websocket access re-check failed; closing")
                else:  # an outage: the client tries again later (1013), one line logged
                    logger.warning("websocket re-check: %s; closing", type(exc).__name__)
                    failed = CLOSE_TRY_AGAIN
                answers[key] = None
        return answers[key]

    results: list[CheckResult] = []
    for sock in sockets:
        user_id, session_key = sock.auth_key()
        signed_in = ask(
            ("auth", user_id, session_key), partial(_authenticated, user_id, session_key)
        )
        if not signed_in:
            results.append(failed if signed_in is None else CLOSE_UNAUTHENTICATED)
            continue
        key = sock.access_key()
        allowed = ask(("grant", key) if key is not None else ("socket", id(sock)), sock.allowed)
        results.append(None if allowed else failed if allowed is None else CLOSE_FORBIDDEN)
    return results


class _Timer:
    """The registered sockets of one loop and the task that re-checks them."""

    def __init__(self) -> None:
        self.sockets: dict[CortexConsumer, float] = {}
        self.task: asyncio.Task[None] | None = None
        #: The interval the task is sleeping for (None while it checks).
        self.sleeping: float | None = None
        self.layer = _LayerProbe()

    async def run(self) -> None:
        while self.sockets:
            self.sleeping = min(self.sockets.values())
            await asyncio.sleep(self.sleeping)
            self.sleeping = None
            sockets = [s for s in self.sockets if not s.closing]
            for start in range(0, len(sockets), CHUNK):
                await self.check(sockets[start : start + CHUNK])
            if await self.layer.came_back():
                # Frames published while the channel layer was down are lost: every socket
                # is told to resync, i.e. refetch what came after its last `seq` over REST.
                for sock in sockets:
                    if not sock.closing:
                        sock.resync()

    async def check(self, sockets: list[CortexConsumer]) -> None:
        from cortex.consumers import CLOSE_SERVER_ERROR

        try:
            results = await check_sockets(sockets)
        except Exception:  # e.g. the executor is gone: close rather than leave unchecked
            logger.exception("websocket access re-check failed; closing")
            results = [CLOSE_SERVER_ERROR] * len(sockets)
        follow_ups = []
        for sock, code in zip(sockets, results, strict=True):
            if code is not None:
                follow_ups.append(sock.shut(code))
            elif sock.wants_rechecked:
                follow_ups.append(sock.run_rechecked())
        if follow_ups:
            await asyncio.gather(*follow_ups, return_exceptions=True)


class _LayerProbe:
    """Whether the channel layer answers, asked once per re-check round (one round trip)."""

    TIMEOUT = 2.0

    def __init__(self) -> None:
        self.channel: str | None = None
        self.down = False

    async def came_back(self) -> bool:
        """True on the first answer after the layer failed to answer."""
        reachable = await self._ping()
        back = reachable and self.down
        if reachable != (not self.down):
            logger.warning("channel layer %s", "back: sockets resync" if reachable else "down")
        self.down = not reachable
        return back

    async def _ping(self) -> bool:
        layer = get_channel_layer()
        if layer is None:
            return True
        try:
            channel = self.channel
            if channel is None:
                # Every layer Channels ships takes a prefix; the stubs' base class does not.
                new = layer.new_channel("wsprobe.")  # type: ignore[call-arg]
                channel = self.channel = await asyncio.wait_for(new, self.TIMEOUT)
            await asyncio.wait_for(layer.send(channel, {"type": "probe"}), self.TIMEOUT)
            await asyncio.wait_for(layer.receive(channel), self.TIMEOUT)
        except Exception:  # unreachable or timed out (a timeout drops the channel: new next time)
            self.channel = None
            return False
        return True


_timers: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Timer] = weakref.WeakKeyDictionary()


def register(sock: CortexConsumer, interval: float) -> None:
    """Re-check `sock` at least every `interval` seconds until `unregister`."""
    loop = asyncio.get_running_loop()
    timer = _timers.get(loop)
    if timer is None:
        timer = _timers[loop] = _Timer()
    timer.sockets[sock] = interval
    if timer.task is not None and timer.sleeping is not None and interval < timer.sleeping:
        timer.task.cancel()  # asleep for longer than this socket may wait: start over
        timer.task = None
    if timer.task is None or timer.task.done():
        timer.task = loop.create_task(timer.run(), name="ws-recheck")


def unregister(sock: CortexConsumer) -> None:
    """Stop re-checking `sock`; the loop's timer stops with its last socket."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return
    timer = _timers.get(loop)
    if timer is None:
        return
    timer.sockets.pop(sock, None)
    if not timer.sockets and timer.task is not None:
        timer.task.cancel()
        timer.task = None
