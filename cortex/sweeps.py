"""Periodic housekeeping the apps register, run by the mesh's sweeper loop.

Every process that serves nodes (`runmesh`, and `serve` with its embedded gRPC) runs the
sweeper (`mesh.grpc.hub.Hub.sweep_loop`) every few seconds; after the mesh's own presence
sweep it runs these. So no request has to clean up on the way (a GET never writes), and the
sweeps need no process of their own. Apps register in `AppConfig.ready()`; the mesh never
imports them (no cycle between apps).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

logger = logging.getLogger("cortex.sweeps")

_sweeps: dict[str, Callable[[], Any]] = {}
#: Sweeps that need not run every round (a storage listing, a scan): their least gap, seconds.
_every: dict[str, float] = {}
#: When this process last ran each such sweep (monotonic); only a throttle, never the truth.
_last: dict[str, float] = {}


def sweep_register(name: str, sweep: Callable[[], Any], *, every_s: float | None = None) -> None:
    """Run `sweep()` (sync, database work) on every sweep round, or at most every `every_s`
    seconds in this process; a name is registered once."""
    if _sweeps.get(name, sweep) is not sweep:
        raise ValueError(f"A different sweep is registered as {name!r}.")
    _sweeps[name] = sweep
    if every_s:
        _every[name] = every_s


def sweeps_run(*, force: bool = False) -> dict[str, Any]:
    """Run every registered sweep that is due (all of them with `force`); what each returned
    (None for one that failed, logged). A throttled sweep that is not due is left out."""
    results: dict[str, Any] = {}
    now = time.monotonic()
    for name, sweep in list(_sweeps.items()):
        every = _every.get(name)
        if every and not force and name in _last and now - _last[name] < every:
            continue
        if every:
            _last[name] = now
        try:
            results[name] = sweep()
        except Exception:
            logger.exception("sweep %s failed", name)
            results[name] = None
    return results
