"""The agent scheduler: one loop in every web process (`serve`, daphne), all equal.

Each pass fires due ticks and claims waiting runs in the database (see `services.runs`), so
any number of processes share the work without double-firing; it beats for the runs this
process drives and ends other processes' runs that stopped beating (`lost`). The set of
tasks below only keeps them from being garbage-collected; the truth is the run rows.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
import socket
import time
import uuid
import weakref

from django.conf import settings

from agents.services import runs
from agents.services.notify import run_notify
from agents.services.runner import run_drive
from cortex.services import db_unit_long as db

logger = logging.getLogger("cortex.agents")

_driving: dict[int, asyncio.Task[None]] = {}
_started: weakref.WeakSet[asyncio.AbstractEventLoop] = weakref.WeakSet()
_keep: set[asyncio.Task[None]] = set()


def worker_id() -> str:
    """This process, as run rows name it (host, pid and a per-start nonce)."""
    global _WORKER
    if _WORKER is None:
        _WORKER = f"{socket.gethostname()[:60]}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    return _WORKER


_WORKER: str | None = None


def _forget(run_id: int, _task: asyncio.Task[None]) -> None:
    _driving.pop(run_id, None)


async def scheduler_pass(*, worker: str) -> bool:
    """One look: fire due ticks, claim waiting runs and start them here, end lost ones.

    True when a batch was full (more is waiting: pass again at once)."""
    for run in await db(runs.runs_reap_lost)():
        await run_notify(
            owner_id=run.agent.owner_id,
            agent_id=run.agent_id,
            run_id=run.pk,
            status=run.status,
            session_id=run.session_id,
        )
    fired = await db(runs.ticks_fire)()
    claimed = await db(runs.runs_claim)(worker=worker)
    for run_id in claimed:
        task = asyncio.create_task(
            run_drive(run_id=run_id, worker=worker), name=f"agent-run-{run_id}"
        )
        _driving[run_id] = task
        task.add_done_callback(functools.partial(_forget, run_id))
    return len(fired) >= runs.BATCH or len(claimed) >= runs.BATCH


async def scheduler_loop(*, stop: asyncio.Event | None = None) -> None:
    """Pass every `CORTEX_AGENT_TICK_S` (sooner when a tick falls due before that, at once
    after a full batch), beat every `CORTEX_AGENT_HEARTBEAT_S`, until stopped."""
    worker = worker_id()
    logger.info("agent scheduler %s running", worker)
    stop = stop or asyncio.Event()
    last_beat = 0.0
    while not stop.is_set():
        wait = settings.AGENT_TICK_S
        try:
            now = time.monotonic()
            if now - last_beat >= settings.AGENT_HEARTBEAT_S:
                last_beat = now
                await db(runs.runs_beat)(worker=worker, run_ids=list(_driving))
            if await scheduler_pass(worker=worker):
                continue
            due_in = await db(runs.next_due_in)()
            if due_in is not None:
                wait = min(wait, due_in + 0.001)
        except asyncio.CancelledError:
            raise
        except Exception:  # the database may be away for a moment; the next pass retries
            logger.warning("agent scheduler pass failed", exc_info=True)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=wait)


def scheduler_start() -> None:
    """Start the loop on the running event loop, once per loop (daphne: first connection)."""
    if not settings.AGENT_SCHEDULER:
        return
    loop = asyncio.get_running_loop()
    if loop in _started:
        return
    _started.add(loop)
    stop = asyncio.Event()
    task = loop.create_task(scheduler_loop(stop=stop), name="agent-scheduler")
    _loops[loop] = (stop, task)
    _keep.add(task)
    task.add_done_callback(_keep.discard)


#: The running scheduler of each loop: its stop event and task (for `scheduler_stop`).
_loops: weakref.WeakKeyDictionary[
    asyncio.AbstractEventLoop, tuple[asyncio.Event, asyncio.Task[None]]
] = weakref.WeakKeyDictionary()

#: Seconds a stopping process gives its runs' turns to record their end before handing over.
STOP_GRACE = 10.0


async def scheduler_stop() -> None:
    """A clean stop (SIGTERM to `serve` or daphne): hand over the runs this process drives.

    The loop stops first (no new claims), then the runs' turns are stopped (each records
    `interrupted` and cancels its node tasks), then every run still claimed here is released
    for another process, or ended at once when it had begun work (`runs.runs_hand_over`) —
    instead of waiting `CORTEX_AGENT_LOST_AFTER_S` to be found `lost`. Never raises.
    """
    loop = asyncio.get_running_loop()
    entry = _loops.pop(loop, None)
    if entry is None:
        return
    stop, task = entry
    stop.set()
    with contextlib.suppress(Exception, asyncio.CancelledError):
        await asyncio.wait_for(asyncio.shield(task), timeout=STOP_GRACE)
    driving = [t for t in _driving.values() if not t.done()]
    for running in driving:
        running.cancel()
    if driving:
        await asyncio.wait(driving, timeout=STOP_GRACE)
    try:
        handed = await db(runs.runs_hand_over)(worker=worker_id())
    except Exception:  # the database is away: the runs end `lost` later, as before
        logger.warning("could not hand over this process's agent runs", exc_info=True)
        return
    for run in handed:
        logger.info("agent run %s handed over: %s", run.pk, run.status)
        with contextlib.suppress(Exception):
            await run_notify(
                owner_id=run.agent.owner_id,
                agent_id=run.agent_id,
                run_id=run.pk,
                status=run.status,
                session_id=run.session_id,
            )
