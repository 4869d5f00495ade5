"""Periodic housekeeping the apps register, run by the mesh's sweeper loop.

Every process that serves nodes (`runmesh`, and `serve` with its embedded gRPC) runs the
sweeper (`mesh.grpc.hub.Hub.sweep_loop`) every few seconds; after the mesh's own presence
sweep it runs these. So no request has to clean up on the way (a GET never writes), and the
sweeps need no process of their own. Apps register in `AppConfig.ready()`; the mesh never
imports them (no cycle between apps).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

logger = logging.getLogger("cortex.sweeps")

_sweeps: dict[str, Callable[[], Any]] = {}


def sweep_register(name: str, sweep: Callable[[], Any]) -> None:
    """Run `sweep()` (sync, database work) on every sweep round; a name is registered once."""
    if _sweeps.get(name, sweep) is not sweep:
        raise ValueError(f"A different sweep is registered as {name!r}.")
    _sweeps[name] = sweep


def sweeps_run() -> dict[str, Any]:
    """Run every registered sweep once; what each returned (None for one that failed, logged)."""
    results: dict[str, Any] = {}
    for name, sweep in list(_sweeps.items()):
        try:
            results[name] = sweep()
        except Exception:
            logger.exception("sweep %s failed", name)
            results[name] = None
    return results
