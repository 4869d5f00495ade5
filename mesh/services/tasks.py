"""Tasks as users see them: dispatch (checked and audited), cancel, wait."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from asgiref.sync import async_to_sync, sync_to_async
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.context import DEFAULT_CONTEXT, AuditContext
from accounts.models import User
from accounts.services import audit_record, audit_refusal
from cortex.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from cortex.services import db_unit
from mesh import events, selectors
from mesh.agent.envpolicy import env_name_refusal
from mesh.models import TERMINAL_STATUSES, Node, Task, TaskKind, TaskStatus
from mesh.services.browser import (
    browser_dispatch_check,
    browser_downloads_clean,
    browser_payload_clean,
)
from mesh.services.journal import _announce_finished, task_expire_undelivered

logger = logging.getLogger("cortex.mesh")

MAX_TIMEOUT = 24 * 3600.0
MAX_DELIVERY_TIMEOUT = 24 * 3600.0
#: The payload key of the hub's confirmation mark: the node runs a command its policy marks
#: sensitive only when the task carries it (a person confirmed, or a chat approval).
CONFIRMED_MARK = "confirmed"
#: The payload key of a browser task's chat session (its page context on the node); hub-set.
SESSION_KEY = "session"
#: The payload key of where a browser task's downloads go (`downloads_target`); hub-set.
DOWNLOADS_KEY = "downloads"
FILE_ACTIONS = (
    "list",
    "stat",
    "read",
    "write",
    "write_many",  # a bundle of small files; only ever staged by the hub (`file_push`)
    "delete",
    "move",
    "copy",
    "manifest",
    "watch",
)


class NodeInactive(Conflict):
    code = "node_inactive"
    default_message = "The node is deactivated."


class SkillDisabled(Conflict):
    code = "skill_disabled"
    default_message = "This skill is switched off on the node."


class CapabilityMissing(Conflict):
    code = "capability_missing"
    default_message = "The node does not offer this skill."


class CommandNotAllowed(PermissionDenied):
    code = "command_not_allowed"
    default_message = "The node's sandbox policy does not allow this command."


class ConfirmationRequired(Conflict):
    code = "confirmation_required"
    default_message = "The command is sensitive on this node and needs confirmation."


class IdempotencyConflict(Conflict):
    code = "idempotency_conflict"
    default_message = "This idempotency key was used for a different request."


def _action_many(payload: dict[str, Any]) -> bool:
    """Whether a files payload is a bundle (`write_many`) with its listing of files."""
    return payload.get("action") == "write_many" and isinstance(payload.get("files"), list)


def _same_request(task: Task, *, kind: str, payload: dict[str, Any], timeout: float) -> bool:
    """Whether a repeated idempotency key comes with the request that created `task`."""
    # The hub adds the blob fields and its confirmation mark itself: not part of the request.
    staged = ("blob", "size", "sha256") if "blob" in (task.payload or {}) else ()
    added = (*staged, CONFIRMED_MARK, SESSION_KEY, DOWNLOADS_KEY)
    stored = {k: v for k, v in (task.payload or {}).items() if k not in added}
    asked = {k: v for k, v in payload.items() if k not in staged}
    return task.kind == kind and stored == asked and float(task.timeout) == float(timeout)


def _idempotent_replay(task: Task, *, kind: str, payload: dict[str, Any], timeout: float) -> Task:
    """The first task again, or 409 `idempotency_conflict` when the request differs."""
    if not _same_request(task, kind=kind, payload=payload, timeout=timeout):
        raise IdempotencyConflict()
    return task


def _clean_payload(kind: str, payload: Any) -> dict[str, Any]:
    if kind not in TaskKind.values:
        raise ValidationFailed(fields={"kind": [f"Must be one of {', '.join(TaskKind.values)}."]})
    if not isinstance(payload, dict):
        raise ValidationFailed(fields={"payload": ["Must be an object."]})
    if kind == TaskKind.SHELL:
        command = payload.get("command")
        if not isinstance(command, str) or not command.strip() or len(command) > 16384:
            raise ValidationFailed(fields={"command": ["A command of 1-16384 characters."]})
        env = payload.get("env", {})
        if not isinstance(env, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in env.items()
        ):
            raise ValidationFailed(fields={"env": ["Must map names to strings."]})
        # The node refuses these names before running; refuse them here, before queueing.
        refusals = [reason for name in env if (reason := env_name_refusal(name))]
        if refusals:
            raise ValidationFailed(fields={"env": [r[0].upper() + r[1:] + "." for r in refusals]})
        cwd = payload.get("cwd", "")
        if not isinstance(cwd, str):
            raise ValidationFailed(fields={"cwd": ["Must be a string."]})
    elif kind == TaskKind.BROWSER:
        payload = browser_payload_clean(payload)
    elif payload.get("action") not in FILE_ACTIONS:
        raise ValidationFailed(fields={"action": [f"Must be one of {', '.join(FILE_ACTIONS)}."]})
    if "blob" in payload:  # a staged push names its blob itself (`file_push`), never a caller
        raise ValidationFailed(fields={"blob": ["Push files with POST /nodes/{id}/files/."]})
    if CONFIRMED_MARK in payload:  # the hub sets the mark (`confirmed=True`), never a caller
        raise ValidationFailed(fields={CONFIRMED_MARK: ['Send "confirm": true instead.']})
    return dict(payload)


def _check_skill(node: Node, kind: str) -> None:
    """409 unless the node takes `kind` now (`selectors.node_skill_refusal`, fail closed)."""
    refusal = selectors.node_skill_refusal(node=node, skill=kind)
    if refusal == selectors.NODE_INACTIVE:
        raise NodeInactive()
    if refusal == selectors.SKILL_DISABLED:
        raise SkillDisabled(f"The {kind} skill is switched off on this node.")
    if refusal is not None:
        raise CapabilityMissing(f"The node does not offer the {kind} skill.")


def _check_command(node: Node, command: str) -> dict[str, Any]:
    """Shell-aware policy check (the node checks again before running)."""
    from mesh.agent.sandbox import Policy, check_command

    try:
        policy = Policy.from_dict(node.sandbox_policy or {})
    except ValueError as exc:
        raise CommandNotAllowed(f"The node's sandbox policy is invalid: {exc}") from exc
    verdict = check_command(policy, command)
    if not verdict.allowed:
        raise CommandNotAllowed(verdict.reason or f"{verdict.offending!r} is not allowed.")
    return {
        "sensitive": bool(verdict.sensitive),
        "offending": verdict.offending or "",
        "commands": list(verdict.commands),
    }


def _require_confirmation(checked: dict[str, Any]) -> None:
    """409 `confirmation_required` naming the sensitive command (a person must say yes)."""
    name = checked.get("offending") or "This command"
    label = f"{name!r}" if checked.get("offending") else name
    raise ConfirmationRequired(
        f"{label} is sensitive on this node and needs confirmation: "
        'send the request again with "confirm": true to run it.',
        fields={"confirm": [f"Required: {label} is sensitive on this node."]},
    )


def _delivery_deadline(delivery_timeout: Any) -> datetime:
    """When the task must have reached its node: its own timeout or the default."""
    if delivery_timeout is None:
        seconds = float(settings.MESH_TASK_DELIVERY_TIMEOUT)
    else:
        try:
            if isinstance(delivery_timeout, bool):
                raise TypeError("a boolean is no number of seconds")
            seconds = float(delivery_timeout)
        except (TypeError, ValueError) as exc:
            raise ValidationFailed(fields={"delivery_timeout": ["Must be a number."]}) from exc
        if not 1 <= seconds <= MAX_DELIVERY_TIMEOUT:  # NaN fails this too
            raise ValidationFailed(
                fields={"delivery_timeout": [f"Must be between 1 and {int(MAX_DELIVERY_TIMEOUT)}."]}
            )
    return timezone.now() + timedelta(seconds=seconds)


def task_dispatch(
    *,
    actor: User,
    node: Node,
    kind: str,
    payload: dict[str, Any],
    timeout: float = 30.0,
    chat_session_id: int | None = None,
    tool_call_id: str = "",
    idempotency_key: str = "",
    audit_context: AuditContext = DEFAULT_CONTEXT,
    staged: dict[str, Any] | None = None,
    confirmed: bool = False,
    delivery_timeout: float | None = None,
    browser_downloads: dict[str, Any] | None = None,
) -> Task:
    """Queue a task for `node` and ring its stream holder.

    `staged` is for `file_push` only: the blob fields it adds to a files write after the
    caller's payload has been checked (a caller's payload may not name a blob).

    A shell command the node's policy marks sensitive needs `confirmed` (a person said yes:
    `"confirm": true`, or a chat approval), else ConfirmationRequired (409). A confirmed shell
    task carries the hub's mark (`payload["confirmed"]`), without which the node refuses a
    command its own check finds sensitive. The task must reach its node within
    `delivery_timeout` seconds (default `CORTEX_TASK_DELIVERY_TIMEOUT`); past that it ends
    `timed_out` / `not_delivered` and is never delivered. `browser_downloads` (browser tasks
    only: `{"folder", "max_bytes"}`, checked by `downloads_target`) tells the node to save the
    chat's downloads in its workspace folder.

    The audit row (with the exact command) is written in the same transaction before the task
    exists: if it cannot be written, no task is stored and nothing is sent. A repeated
    `idempotency_key` from the same user returns the first task.
    """
    if not selectors.node_usable_for(user=actor, node=node):
        raise NotFound("No such node.")
    payload = _clean_payload(kind, payload)
    if staged:
        payload.update(staged)
    try:
        timeout = float(timeout)
    except (TypeError, ValueError) as exc:
        raise ValidationFailed(fields={"timeout": ["Must be a number."]}) from exc
    if not 0 < timeout <= MAX_TIMEOUT:
        raise ValidationFailed(fields={"timeout": [f"Must be between 0 and {int(MAX_TIMEOUT)}."]})
    deliver_by = _delivery_deadline(delivery_timeout)
    if idempotency_key:
        existing = Task.objects.filter(
            node=node, requested_by=actor, idempotency_key=idempotency_key
        ).first()
        if existing is not None:
            return _idempotent_replay(existing, kind=kind, payload=payload, timeout=timeout)
    _check_skill(node, kind)
    checked: dict[str, Any] = {}
    if kind == TaskKind.BROWSER:
        try:
            checked = browser_dispatch_check(node=node, payload=payload, confirmed=confirmed)
        except PermissionDenied as exc:
            audit_refusal(
                actor=actor,
                action="task.refused",
                reason=exc.code,
                target_type="node",
                target_id=node.node_id,
                audit_context=audit_context,
                details={"node_id": node.node_id, "action": payload["action"]},
            )
            raise
        payload[SESSION_KEY] = str(chat_session_id) if chat_session_id is not None else ""
        if browser_downloads is not None:
            payload[DOWNLOADS_KEY] = browser_downloads_clean(browser_downloads)
        if confirmed and checked["sensitive"]:
            payload[CONFIRMED_MARK] = True
    if kind == TaskKind.SHELL:
        try:
            checked = _check_command(node, payload["command"])
        except CommandNotAllowed as exc:
            # Refusals are audited too, one row per actor a minute however many come.
            audit_refusal(
                actor=actor,
                action="task.refused",
                reason=exc.code,
                target_type="node",
                target_id=node.node_id,
                audit_context=audit_context,
                details={"node_id": node.node_id, "command": payload["command"][:1000]},
            )
            raise
        if checked["sensitive"] and not confirmed:
            _require_confirmation(checked)
        if confirmed:
            payload[CONFIRMED_MARK] = True
    task_id = uuid.uuid4()
    try:
        with transaction.atomic():
            audit_record(
                actor=actor,
                action="task.dispatch",
                target_type="task",
                target_id=str(task_id),
                audit_context=audit_context,
                details={
                    "node_id": node.node_id,
                    "kind": kind,
                    "command": payload.get("command", ""),
                    "action": payload.get("action", ""),
                    "path": payload.get("path", payload.get("url", "")),
                    # A bundle is audited by its count of files, never its listing.
                    **({"files": len(payload["files"])} if _action_many(payload) else {}),
                    "timeout": timeout,
                    "sensitive": checked.get("sensitive", False),
                    "confirmed": bool(confirmed),
                    "deliver_by": deliver_by.isoformat(),
                    "chat_session_id": chat_session_id,
                    "tool_call_id": tool_call_id,
                },
            )
            task = Task(
                id=task_id,
                node=node,
                requested_by=actor if actor is not None and actor.is_authenticated else None,
                chat_session_id=chat_session_id,
                tool_call_id=tool_call_id,
                idempotency_key=idempotency_key,
                kind=kind,
                payload=payload,
                timeout=timeout,
                deliver_by=deliver_by,
            )
            # Field checks only: node and requester are loaded rows, and the one uniqueness
            # rule (idempotency key) is the database's, handled below as IntegrityError.
            task.full_clean(
                exclude=["node", "requested_by"], validate_unique=False, validate_constraints=False
            )
            task.save(force_insert=True)
            events.ring_node(node.node_id, events.RING_TASKS)
    except IntegrityError:
        if idempotency_key:  # a concurrent request with the same key won
            winner = Task.objects.get(
                node=node, requested_by=actor, idempotency_key=idempotency_key
            )
            return _idempotent_replay(winner, kind=kind, payload=payload, timeout=timeout)
        raise
    return task


def task_cancel(
    *, actor: User, task: Task, reason: str = "", audit_context: AuditContext = DEFAULT_CONTEXT
) -> Task:
    """Cancel a task: a queued one at once, a running one by asking its node (TaskCancel)."""
    now = timezone.now()
    with transaction.atomic():
        locked = Task.objects.select_for_update().get(pk=task.pk)
        if locked.is_terminal:
            return locked
        audit_record(
            actor=actor,
            action="task.cancel",
            target_type="task",
            target_id=str(task.pk),
            audit_context=audit_context,
            details={"node_id": task.node.node_id, "status": locked.status, "reason": reason},
        )
        if locked.status == TaskStatus.QUEUED:
            locked.status = TaskStatus.CANCELLED
            locked.error_code = "cancelled"
            locked.finished_at = now
        locked.cancel_requested_at = now
        locked.cancel_reason = reason[:255]
        locked.save(
            update_fields=[
                "status",
                "error_code",
                "finished_at",
                "cancel_requested_at",
                "cancel_reason",
                "updated_at",
            ]
        )
        if locked.status == TaskStatus.CANCELLED:
            _announce_finished(locked)
        else:
            events.ring_node(task.node.node_id, events.RING_CANCEL)
    return locked


def task_wait(*, task: Task, timeout: float) -> Task:
    """Block up to `timeout` seconds until the task is terminal; returns its latest state.

    Waits on the database state, woken early by the task's doorbell (polls once a second in
    case a doorbell is lost). A task the caller loaded as terminal is returned as it is. This
    holds the calling thread: under the ASGI server the REST long poll uses
    `task_wait_async` instead.
    """
    if task.is_terminal:
        return task
    if timeout <= 0:
        return _load_settled(task.pk)
    load = sync_to_async(lambda: _load_settled(task.pk))

    async def wait() -> Task:
        await _await_terminal(task.pk, float(timeout), is_terminal=_loaded_terminal(load))
        return await load()

    return async_to_sync(wait)()


async def task_wait_async(*, task_id: uuid.UUID, timeout: float) -> None:
    """Wait on the event loop, holding no thread, until the task is terminal or `timeout` has
    passed; the caller reads the task afterwards.

    The once-a-second check reads only the status, in the loop's shared worker pool (never a
    thread of its own per waiter), closing stale connections around it as a request would.
    """
    await _await_terminal(task_id, float(timeout), is_terminal=_status_is_terminal)


def _load_settled(task_id: uuid.UUID) -> Task:
    """The task, ended `not_delivered` first if it is still queued past its deadline (so a
    waiter learns at the deadline, not at the next sweep)."""
    task = Task.objects.select_related("node").get(pk=task_id)
    if task.status == TaskStatus.QUEUED and task.deliver_by <= timezone.now():
        task_expire_undelivered(task_id=task_id)
        task = Task.objects.select_related("node").get(pk=task_id)
    return task


def _loaded_terminal(load: Callable[[], Awaitable[Task]]) -> Callable[[uuid.UUID], Awaitable[bool]]:
    async def check(task_id: uuid.UUID) -> bool:
        return (await load()).is_terminal

    return check


def _status_terminal_unit(task_id: uuid.UUID) -> bool:
    """Whether the task is over (a queued task past its delivery deadline is ended first)."""
    row = Task.objects.filter(pk=task_id).values_list("status", "deliver_by").first()
    if row is None:
        return True
    status, deliver_by = row
    if status == TaskStatus.QUEUED and deliver_by <= timezone.now():
        task_expire_undelivered(task_id=task_id)
        return True
    return status in TERMINAL_STATUSES


_status_is_terminal = db_unit(_status_terminal_unit, thread_sensitive=False)


async def _await_terminal(
    task_id: uuid.UUID,
    timeout: float,
    *,
    is_terminal: Callable[[uuid.UUID], Awaitable[bool]],
) -> None:
    layer = get_channel_layer()
    deadline = time.monotonic() + timeout
    channel = group = None
    if layer is not None:
        try:
            channel = await layer.new_channel()
            group = events.group_name(events.TASK_GROUP, task_id=task_id)
            await layer.group_add(group, channel)
        except Exception:  # no layer: fall back to polling
            logger.warning("task wait without doorbell", exc_info=True)
            channel = None
    try:
        while True:
            if await is_terminal(task_id):
                return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return
            step = min(remaining, 1.0)
            if layer is not None and channel is not None:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(layer.receive(channel), timeout=step)
            else:
                await asyncio.sleep(min(step, 0.25))
    finally:
        if layer is not None and channel is not None and group is not None:
            try:
                await layer.group_discard(group, channel)
            except Exception:
                logger.debug("group_discard failed", exc_info=True)


__all__ = [
    "CapabilityMissing",
    "CommandNotAllowed",
    "ConfirmationRequired",
    "IdempotencyConflict",
    "NodeInactive",
    "SkillDisabled",
    "task_cancel",
    "task_dispatch",
    "task_wait",
    "task_wait_async",
]
