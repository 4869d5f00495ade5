"""The console's file browser: one files task on the node per request, waited for here.

Every action goes through `task_dispatch` (grant check, audit row, the node's own jail), so the
browser can do nothing the files skill would not let the same user do from a chat."""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any

from accounts.context import DEFAULT_CONTEXT, AuditContext
from accounts.models import User
from cortex.errors import Conflict, NotFound, Unavailable, ValidationFailed
from mesh import selectors
from mesh.models import Node, NodeStatus, TaskStatus
from mesh.services.tasks import task_dispatch, task_wait

WORKSPACE_TIMEOUT = 30.0
_CODE = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


class WorkspaceTaskFailed(Conflict):
    """The node answered the files action with a refusal or an error (its code is kept)."""

    code = "files_failed"


class WorkspacePathRefused(ValidationFailed):
    """The node's jail refused the path: a 400 with the jail's code (`path_outside_workspace`,
    `invalid_path`), the same answer the shared workspace API gives for the same path."""

    code = "path_outside_workspace"


class WorkspaceNodeOffline(Conflict):
    """The console's file actions need the node now: none is queued for later (a delete
    queued on an offline node would run whenever it came back, long after the person left)."""

    code = "node_offline"


class WorkspaceTaskUnfinished(Unavailable):
    """The node did not finish the files action in time (offline, busy or lost)."""

    code = "files_unfinished"
    http_status = 504


def _path(path: Any, *, required: bool) -> str | None:
    if path in (None, "") and not required:
        return None
    if not isinstance(path, str) or not path.strip() or len(path) > 4096 or "\x00" in path:
        raise ValidationFailed(fields={"path": ["A path of 1-4096 characters."]})
    return path


def _run(
    *, actor: User, node: Node, payload: dict[str, Any], audit_context: AuditContext
) -> dict[str, Any]:
    # Grants first: whether a node outside them is online is none of the caller's business.
    if not selectors.node_usable_for(user=actor, node=node):
        raise NotFound("No such node.")
    if node.status != NodeStatus.ONLINE:
        raise WorkspaceNodeOffline(f"{node.node_id} is {node.status}: file actions need it online.")
    task = task_dispatch(
        actor=actor,
        node=node,
        kind="files",
        payload=payload,
        timeout=WORKSPACE_TIMEOUT,
        audit_context=audit_context,
        delivery_timeout=WORKSPACE_TIMEOUT,  # never delivered after the person stopped waiting
    )
    task = task_wait(task=task, timeout=WORKSPACE_TIMEOUT + 5)
    if task.status == TaskStatus.SUCCEEDED and isinstance(task.result, dict):
        return task.result
    if task.status not in (TaskStatus.FAILED,):
        raise WorkspaceTaskUnfinished(f"The files task ended {task.status} on the node.")
    code = task.error_code if _CODE.match(task.error_code or "") else "files_failed"
    message = task.error_message or "The node could not do that."
    if code == "not_found":
        raise NotFound(message)
    if code in ("path_outside_workspace", "invalid_path"):
        raise WorkspacePathRefused(message, code=code)
    raise WorkspaceTaskFailed(message, code=code)


def workspace_list(
    *,
    actor: User,
    node: Node,
    path: str | None = None,
    audit_context: AuditContext = DEFAULT_CONTEXT,
) -> dict[str, Any]:
    """The entries of a directory of the node's workspace (its root when `path` is empty)."""
    payload: dict[str, Any] = {"action": "list"}
    clean = _path(path, required=False)
    if clean is not None:
        payload["path"] = clean
    return _run(actor=actor, node=node, payload=payload, audit_context=audit_context)


def workspace_read(
    *, actor: User, node: Node, path: str, audit_context: AuditContext = DEFAULT_CONTEXT
) -> bytes:
    """A file's bytes (within the node's read limit)."""
    payload = {"action": "read", "path": _path(path, required=True), "encoding": "base64"}
    result = _run(actor=actor, node=node, payload=payload, audit_context=audit_context)
    try:
        return base64.b64decode(str(result.get("content", "")), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise WorkspaceTaskFailed("The node sent a file that could not be decoded.") from exc


def workspace_delete(
    *, actor: User, node: Node, path: str, audit_context: AuditContext = DEFAULT_CONTEXT
) -> None:
    """Delete a file or an empty directory (never recursive from the console)."""
    payload = {"action": "delete", "path": _path(path, required=True)}
    _run(actor=actor, node=node, payload=payload, audit_context=audit_context)
