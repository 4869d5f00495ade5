"""Reads of terminal sessions and their recordings (the writes are in mesh/services/terminals.py).

Who may read: the user who opened a session, or an admin (every recording) on a node they may
see; anything else is `TerminalNotFound`, like a session that does not exist.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

from cortex.errors import NotFound
from mesh.models import OPEN_TERMINAL_STATUSES, TerminalChunk, TerminalSession, TerminalStatus
from mesh.selectors.access import node_get_for_user

#: Most chunks one replay call returns (the consumer pages through longer ones).
REPLAY_PAGE = 500


class TerminalNotFound(NotFound):
    code = "terminal_not_found"


def text_of(data: bytes) -> str:
    """Terminal bytes as frame text: UTF-8, invalid bytes replaced."""
    return data.decode("utf-8", "replace")


def session_uuid(session_id: Any) -> uuid.UUID:
    """A session id from a client or a node; anything but a UUID is a session that is not."""
    try:
        return uuid.UUID(str(session_id))
    except ValueError as exc:
        raise TerminalNotFound("No such terminal.") from exc


def terminal_get_for_user(*, user: Any, node_id: str, session_id: Any) -> TerminalSession:
    """A session on a node the user may see: the user's own, or any for admins."""
    node = node_get_for_user(user=user, node_id=node_id)
    found = (
        TerminalSession.objects.select_related("node")
        .filter(pk=session_uuid(session_id), node=node)
        .first()
    )
    if found is None or not (user.is_staff or found.user_id == user.pk):
        raise TerminalNotFound("No such terminal.")
    return found


def terminal_list_for_user(*, user: Any, node_id: str) -> Any:
    """Sessions on the node the user may see: their own, or every one for admins."""
    node = node_get_for_user(user=user, node_id=node_id)
    sessions = TerminalSession.objects.filter(node=node).select_related("user")
    return sessions if user.is_staff else sessions.filter(user=user)


def terminal_chunks_after(
    *, session_id: Any, after_seq: int, limit: int = REPLAY_PAGE
) -> list[tuple[int, float, bytes]]:
    """Stored output after `after_seq`, oldest first: (seq, at, data)."""
    rows = TerminalChunk.objects.filter(session_id=session_id, seq__gt=after_seq).order_by("seq")
    return [
        (seq, at, bytes(data)) for seq, at, data in rows.values_list("seq", "at", "data")[:limit]
    ]


def terminal_replay(
    *, session_id: Any, after_seq: int, before_seq: int | None, limit: int
) -> dict[str, Any]:
    """One page of a re-attach: stored chunks after `after_seq` (below `before_seq`), and the
    session's exit (`{code, error}`) once it has ended, else None."""
    status, exit_code, error_code = (
        TerminalSession.objects.filter(pk=session_id)
        .values_list("status", "exit_code", "error_code")
        .get()
    )
    chunks = terminal_chunks_after(session_id=session_id, after_seq=after_seq, limit=limit)
    if before_seq is not None:
        chunks = [c for c in chunks if c[0] < before_seq]
    ended = status not in OPEN_TERMINAL_STATUSES
    return {"chunks": chunks, "exit": {"code": exit_code, "error": error_code} if ended else None}


def terminal_text_after(*, session_id: Any, after_seq: int) -> tuple[str, int]:
    """The stored output after `after_seq` as text, and the last seq read."""
    rows = TerminalChunk.objects.filter(session_id=session_id, seq__gt=after_seq).order_by("seq")
    data = b""
    last = after_seq
    for seq, chunk in rows.values_list("seq", "data"):
        data += bytes(chunk)
        last = seq
    return text_of(data), last


def terminal_cast(*, session: TerminalSession) -> Iterator[str]:
    """The recording as asciicast v2 lines (header, then `[at, "o", text]` events)."""
    started = session.started_at or session.created_at
    header = {
        "version": 2,
        "width": session.cols,
        "height": session.rows,
        "timestamp": int(started.timestamp()),
        "title": f"{session.node.node_id} terminal {session.pk}",
        "env": {"TERM": "xterm-256color"},
    }
    yield json.dumps(header) + "\n"
    rows = TerminalChunk.objects.filter(session=session).order_by("seq")
    for at, data in rows.values_list("at", "data").iterator(chunk_size=200):
        if data:  # empty: past the recording cap
            yield json.dumps([round(at, 6), "o", text_of(bytes(data))]) + "\n"


def node_terminals(node_id: str) -> Any:
    """Every session of the node (the node side: no user, the node's own)."""
    return TerminalSession.objects.filter(node__node_id=node_id)


def terminals_pending(*, node_id: str) -> tuple[list[tuple[str, int, int]], list[str]]:
    """What the node must be told: sessions to open (id, cols, rows) and sessions to close."""
    sessions = node_terminals(node_id).filter(status__in=OPEN_TERMINAL_STATUSES)
    opening = [
        (str(pk), cols, rows)
        for pk, cols, rows in sessions.filter(
            status=TerminalStatus.OPENING, close_requested_at__isnull=True
        ).values_list("pk", "cols", "rows")
    ]
    closing = [
        str(pk)
        for pk in sessions.filter(close_requested_at__isnull=False).values_list("pk", flat=True)
    ]
    return opening, closing


def terminals_ended_among(*, node_id: str, held: list[str]) -> list[str]:
    """Sessions a node still holds that the hub has ended (lost while it was away): the node
    must hang them up."""
    ids = [session_uuid(h) for h in held]
    ended = node_terminals(node_id).filter(pk__in=ids).exclude(status__in=OPEN_TERMINAL_STATUSES)
    return [str(pk) for pk in ended.values_list("pk", flat=True)]
