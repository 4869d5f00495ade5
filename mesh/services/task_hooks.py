"""Hooks other apps register to hear that a task ended (after its transaction commits).

The mesh never imports those apps: they register in `AppConfig.ready()`, like `cortex.sweeps`.
A hook gets the task's id, kind, payload and final status; it reloads whatever else it needs
from the database (the row is the truth). A hook that fails is logged and never fails the
task's own state change; whatever it missed, its app's sweep must catch up on.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from django.db import transaction

logger = logging.getLogger("cortex.mesh")

TaskEndHook = Callable[..., None]
_hooks: dict[str, TaskEndHook] = {}


def task_end_register(name: str, hook: TaskEndHook) -> None:
    """Call `hook(task_id=, kind=, payload=, status=)` once a task's end is committed."""
    if _hooks.get(name, hook) is not hook:
        raise ValueError(f"A different task-end hook is registered as {name!r}.")
    _hooks[name] = hook


def task_end_notify(*, task_id: str, kind: str, payload: Any, status: str) -> None:
    """Run every hook once the current transaction commits (now, outside one)."""
    if not _hooks:
        return

    def run() -> None:
        for name, hook in list(_hooks.items()):
            try:
                hook(task_id=task_id, kind=kind, payload=payload, status=status)
            except Exception:
                logger.exception("task-end hook %s failed for task %s", name, task_id)

    transaction.on_commit(run)
