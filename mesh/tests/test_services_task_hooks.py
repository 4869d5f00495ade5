"""Task-end hooks: registered once per name, run only after the task's end commits, and a
failing hook never stops the others."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest

from mesh.services import task_hooks
from mesh.services.task_hooks import task_end_notify, task_end_register

pytestmark = pytest.mark.django_db


@pytest.fixture
def heard() -> Iterator[list[dict[str, Any]]]:
    """A recording hook under a test-only name (removed again afterwards)."""
    calls: list[dict[str, Any]] = []

    def record(**kwargs: Any) -> None:
        calls.append(kwargs)

    task_end_register("test-record", record)
    yield calls
    task_hooks._hooks.pop("test-record", None)
    task_hooks._hooks.pop("test-broken", None)


def test_register_is_idempotent_but_refuses_a_second_hook_under_one_name(heard) -> None:
    hook = task_hooks._hooks["test-record"]
    task_end_register("test-record", hook)  # the same hook again (a second ready()) is fine
    with pytest.raises(ValueError, match="test-record"):
        task_end_register("test-record", lambda **kwargs: None)
    assert task_hooks._hooks["test-record"] is hook


def test_notify_runs_hooks_only_after_commit(heard, django_capture_on_commit_callbacks) -> None:
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        task_end_notify(task_id="t1", kind="files", payload={"a": 1}, status="succeeded")
        assert heard == []  # nothing before the transaction commits
    assert len(callbacks) == 1
    assert heard == [{"task_id": "t1", "kind": "files", "payload": {"a": 1}, "status": "succeeded"}]


def test_a_failing_hook_is_logged_and_the_others_still_run(
    heard, django_capture_on_commit_callbacks, caplog
) -> None:
    def broken(**kwargs: Any) -> None:
        raise RuntimeError("boom")

    # The broken hook runs before the recording one: it must not stop it.
    record = task_hooks._hooks.pop("test-record")
    task_end_register("test-broken", broken)
    task_end_register("test-record", record)
    with (
        caplog.at_level(logging.ERROR, logger="cortex.mesh"),
        django_capture_on_commit_callbacks(execute=True),
    ):
        task_end_notify(task_id="t2", kind="shell", payload={}, status="failed")
    assert [c["task_id"] for c in heard] == ["t2"]
    assert any("test-broken" in r.getMessage() and "t2" in r.getMessage() for r in caplog.records)
