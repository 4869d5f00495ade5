"""Browser work on nodes: the hub's checks before dispatch, screenshots, closing sessions.

The action contract and the domain policy are the agent's own module
(`mesh/agent/browser_actions.py`): the hub refuses here what the node would refuse, and the node
checks again (it also resolves names, which the hub does not).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import logging
import re
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.db import transaction
from django.utils import timezone

from accounts.context import AuditContext
from accounts.models import User
from cortex.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from mesh.agent.browser_actions import (
    ACTIONS,
    URL_ACTIONS,
    ActionError,
    BrowserPolicy,
    downloads_target,
    url_refusal,
    validate_action,
)
from mesh.models import Node, Task

logger = logging.getLogger("cortex.mesh")

SCREENSHOT_PREFIX = "mesh/browser/"
MAX_SCREENSHOT_BYTES = 8 * 1024 * 1024


class UrlNotAllowed(PermissionDenied):
    code = "url_not_allowed"
    default_message = "The node's browser policy does not allow this address."


class EvaluateNotAllowed(PermissionDenied):
    code = "evaluate_not_allowed"
    default_message = "This node's policy does not allow running JavaScript in pages."


class BrowserApprovalRequired(Conflict):
    code = "confirmation_required"
    default_message = "Running JavaScript in a page needs a person's approval."


def browser_policy_of(node: Node) -> BrowserPolicy | None:
    """The node's browser policy; None when its stored policy cannot be read (refuse all)."""
    from mesh.agent.sandbox import Policy

    try:
        return Policy.from_dict(node.sandbox_policy or {}).browser_policy
    except ValueError:
        return None


def browser_payload_clean(payload: dict[str, Any]) -> dict[str, Any]:
    """The payload checked against the shared contract (callers may not set hub keys)."""
    try:
        return validate_action(payload)
    except ActionError as exc:
        raise ValidationFailed(fields={"action": [exc.message]}) from exc


def browser_downloads_clean(value: Any) -> dict[str, Any]:
    """Where a browser task's downloads go, checked by the node's own rule (fail closed)."""
    try:
        target = downloads_target(value)
    except ActionError as exc:
        raise ValidationFailed(fields={"downloads": [exc.message]}) from exc
    if target is None:
        raise ValidationFailed(fields={"downloads": ["Required."]})
    return {"folder": target[0], "max_bytes": target[1]}


def browser_dispatch_check(
    *, node: Node, payload: dict[str, Any], confirmed: bool
) -> dict[str, Any]:
    """Refuse what the node's policy refuses; returns what the audit row should record."""
    policy = browser_policy_of(node)
    if policy is None:
        raise UrlNotAllowed("The node's browser policy is invalid; nothing may be opened.")
    action = ACTIONS[payload["action"]]
    if action.name in URL_ACTIONS and "url" in payload:
        why = url_refusal(policy, payload["url"])
        if why is not None:
            raise UrlNotAllowed(f"Refused: {why}.")
    if action.needs_approval:
        if not policy.allow_evaluate:
            raise EvaluateNotAllowed()
        if not confirmed:
            raise BrowserApprovalRequired(
                fields={"confirm": ["Required: running JavaScript needs approval."]}
            )
    return {"sensitive": action.needs_approval}


def browser_session_close(*, actor: User, chat_session_id: int, nodes: list[Node]) -> list[Task]:
    """Tell each node with a browser that chat session `chat_session_id` ended (its context
    closes); a node that cannot take browser work is skipped. Best effort: a refusal is logged."""
    from mesh.services.tasks import task_dispatch

    tasks: list[Task] = []
    for node in nodes:
        if not (node.skill_config or {}).get("browser") or not (node.capabilities or {}).get(
            "browser"
        ):
            continue
        try:
            tasks.append(
                task_dispatch(
                    actor=actor,
                    node=node,
                    kind="browser",
                    payload={"action": "close"},
                    timeout=30,
                    chat_session_id=chat_session_id,
                    audit_context=AuditContext.system("browser_close"),
                )
            )
        except (NotFound, PermissionDenied, Conflict, ValidationFailed) as exc:
            logger.info("browser of session %s on %s not closed: %s", chat_session_id, node, exc)
    return tasks


def _screenshot_name(task_id: Any) -> str:
    return f"{SCREENSHOT_PREFIX}{task_id}.png"


def browser_result_store(*, task_id: Any, result: Any) -> Any:
    """A screenshot in a node's result moves to storage (the task's artifact); the result keeps
    its size and digest. Anything that is not a PNG is dropped, not stored."""
    if not isinstance(result, dict) or "png_base64" not in result:
        return result
    result = dict(result)
    encoded = result.pop("png_base64")
    try:
        png = base64.b64decode(encoded, validate=True) if isinstance(encoded, str) else b""
    except (binascii.Error, ValueError):
        png = b""
    if not png.startswith(b"\x89PNG\r\n\x1a\n") or len(png) > MAX_SCREENSHOT_BYTES:
        result["screenshot"] = {"stored": False, "reason": "not a PNG or too large"}
        return result
    name = _screenshot_name(task_id)
    if default_storage.exists(name):
        default_storage.delete(name)
    default_storage.save(name, ContentFile(png))
    result["screenshot"] = {
        "stored": True,
        "bytes": len(png),
        "sha256": hashlib.sha256(png).hexdigest(),
        "url": f"/api/v1/tasks/{task_id}/screenshot/",
    }
    return result


#: A stored screenshot younger than this is not an orphan yet: the result naming it may still be
#: in an uncommitted transaction.
SCREENSHOT_ORPHAN_AGE = timedelta(minutes=10)
_SCREENSHOT_NAME = re.compile(
    r"([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\.png"
)


def _storage_delete_after_commit(names: list[str]) -> None:
    def delete() -> None:
        for name in names:
            try:
                default_storage.delete(name)
            except OSError:
                logger.warning("could not delete screenshot %s", name)

    if names:
        transaction.on_commit(delete)


def browser_screenshots_delete(*, task_ids: Iterable[Any]) -> int:
    """Remove the stored screenshots of these tasks (once the caller's transaction commits);
    task rows that remain say `stored: false`. Returns how many were stored."""
    ids = list(task_ids)
    if not ids:
        return 0
    names: list[str] = []
    for task in Task.objects.filter(pk__in=ids, kind="browser").only("pk", "result"):
        if not isinstance(task.result, dict):
            continue
        shot = task.result.get("screenshot")
        if isinstance(shot, dict) and shot.get("stored"):
            result = dict(task.result)
            result["screenshot"] = {"stored": False, "reason": "deleted"}
            Task.objects.filter(pk=task.pk).update(result=result)
            names.append(_screenshot_name(task.pk))
    _storage_delete_after_commit(names)
    return len(names)


def browser_screenshots_sweep(*, now: datetime | None = None) -> int:
    """Delete stored screenshots no task claims (its row deleted, or its result no longer
    names it) that are older than SCREENSHOT_ORPHAN_AGE. Returns how many were deleted."""
    now = now or timezone.now()
    try:
        _, files = default_storage.listdir(SCREENSHOT_PREFIX.rstrip("/"))
    except FileNotFoundError:
        return 0
    ids = {m.group(1): SCREENSHOT_PREFIX + f for f in files if (m := _SCREENSHOT_NAME.fullmatch(f))}
    claimed = {
        str(pk)
        for pk in Task.objects.filter(
            pk__in=list(ids), kind="browser", result__screenshot__stored=True
        ).values_list("pk", flat=True)
    }
    # Anything else under the prefix is no task's screenshot at all.
    strays = [SCREENSHOT_PREFIX + f for f in files if not _SCREENSHOT_NAME.fullmatch(f)]
    orphans = [name for key, name in ids.items() if key not in claimed] + strays
    deleted = 0
    for name in orphans:
        try:
            if now - default_storage.get_modified_time(name) < SCREENSHOT_ORPHAN_AGE:
                continue
            default_storage.delete(name)
        except OSError:
            logger.warning("could not sweep screenshot %s", name)
            continue
        deleted += 1
    return deleted


def browser_screenshot_open(*, task: Task) -> Any:
    """The stored screenshot of `task` (a file to stream); NotFound when it has none."""
    stored = (task.result or {}).get("screenshot") if isinstance(task.result, dict) else None
    if task.kind != "browser" or not isinstance(stored, dict) or not stored.get("stored"):
        raise NotFound("This task has no screenshot.", code="screenshot_missing")
    try:
        return default_storage.open(_screenshot_name(task.pk), "rb")
    except FileNotFoundError as exc:
        raise NotFound("This task has no screenshot.", code="screenshot_missing") from exc
