"""Node statistics for heartbeats, from psutil (the NodeStats message fields)."""

from __future__ import annotations

import contextlib
import os
from typing import Any

import psutil


def prime() -> None:
    """psutil's first cpu_percent() call returns 0.0: call once at start-up."""
    psutil.cpu_percent(interval=None)
    psutil.cpu_percent(interval=None, percpu=True)


def collect(active_tasks: int = 0) -> dict[str, Any]:
    """A snapshot of CPU, memory and load (bytes for memory)."""
    memory = psutil.virtual_memory()
    freq = 0.0
    with contextlib.suppress(Exception):  # not available on every platform or container
        current = psutil.cpu_freq()
        freq = float(current.current) if current else 0.0
    load: list[float] = []
    with contextlib.suppress(OSError, AttributeError):
        load = [float(x) for x in os.getloadavg()]
    return {
        "cpu_percent": float(psutil.cpu_percent(interval=None)),
        "cpu_per_core": [float(x) for x in psutil.cpu_percent(interval=None, percpu=True)],
        "cpu_count": int(psutil.cpu_count() or 0),
        "cpu_freq_mhz": freq,
        "memory_used": int(memory.used),
        "memory_total": int(memory.total),
        "memory_available": int(memory.available),
        "memory_percent": float(memory.percent),
        "load_avg": load,
        "active_tasks": int(active_tasks),
    }
