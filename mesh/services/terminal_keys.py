"""Keystrokes and resizes for a node's terminal: rung live, stored in order, rung again.

The channel layer is a doorbell, not a store: a keystroke rung while no runmesh holds the node's
stream (the hub restarting, the node reconnecting, a runmesh that died with the stream) reaches
nobody. So each input is rung live (the runmesh holding the stream sends it at once: an echo
waits for no database write), then stored (`TerminalInput`, numbered per session, bounded by
`MESH_TERMINAL_INPUT_BACKLOG` not yet sent) and rung again as "stored". A runmesh that did not
get the live bell sends from storage, in order; one that takes the node's stream sends what is
stored and unsent first, and later bells wait for that.

Each input's key is `<writer>.<n>`: the socket that typed it and its place among that socket's
inputs. A runmesh sends a live input only right after the writer's previous one (else it waits
for storage), so an input never overtakes an earlier one of its socket. The node applies each
key once: a resend, or two runmesh processes racing, never types anything twice. A session that
ends drops what it still had stored.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F

from cortex.errors import Conflict, CortexError
from mesh import events
from mesh.models import (
    OPEN_TERMINAL_STATUSES,
    TerminalInput,
    TerminalInputKind,
    TerminalSession,
)
from mesh.selectors.terminals import TerminalNotFound, node_terminals, session_uuid

#: Doorbell reasons (handled by the runmesh holding the node's stream).
RING_TERMINAL_INPUT = "terminal.input"
RING_TERMINAL_RESIZE = "terminal.resize"
RING_TERMINAL_STORED = "terminal.stored"
#: Rows kept after they were sent, for a node that reconnects having missed the last ones.
KEEP_SENT = 64


class TerminalEnded(Conflict):
    code = "terminal_ended"


class TerminalInputBacklog(Conflict):
    code = "terminal_input_backlog"


def new_writer() -> str:
    """A writer id for a socket (or a one-off caller): its inputs are numbered 1, 2, ..."""
    return uuid.uuid4().hex[:16]


def key_order(key: str) -> tuple[str, int] | None:
    """(writer, n) of an input key, None for anything else."""
    writer, _, n = key.rpartition(".")
    if not writer or not n.isdigit():
        return None
    return writer, int(n)


def terminal_keys_bell(
    *,
    node_id: str,
    session_id: Any,
    kind: str,
    data: str = "",
    cols: int = 0,
    rows: int = 0,
    writer: str = "",
    n: int = 1,
) -> dict[str, Any]:
    """The live doorbell of one input or resize, the `n`th of `writer` (nothing is stored)."""
    bell: dict[str, Any] = {
        "type": events.DOORBELL,
        "node_id": node_id,
        "session": str(session_uuid(session_id)),
        "key": f"{writer or new_writer()}.{int(n)}",
    }
    if kind == TerminalInputKind.RESIZE:
        bell.update(reason=RING_TERMINAL_RESIZE, cols=cols, rows=rows)
    else:
        bell.update(reason=RING_TERMINAL_INPUT, data=data)
    return bell


def terminal_keys_store(*, bell: dict[str, Any]) -> dict[str, Any]:
    """Store the input a live bell carried (for an open session of its node); returns the
    "stored" doorbell to ring once committed. Raises TerminalNotFound, TerminalEnded, or
    TerminalInputBacklog (the node has been away for too many frames); nothing is stored then."""
    node_id, session_id = str(bell["node_id"]), bell["session"]
    resize = bell["reason"] == RING_TERMINAL_RESIZE
    kind = TerminalInputKind.RESIZE if resize else TerminalInputKind.INPUT
    data = "" if resize else str(bell.get("data", ""))
    cols, rows = (int(bell["cols"]), int(bell["rows"])) if resize else (0, 0)
    pk = session_uuid(session_id)
    backlog = int(settings.MESH_TERMINAL_INPUT_BACKLOG)
    with transaction.atomic():
        # The row's lock orders concurrent writers: seqs commit in the order they are given.
        taken = TerminalSession.objects.filter(
            pk=pk,
            node__node_id=node_id,
            status__in=OPEN_TERMINAL_STATUSES,
            input_seq__lt=F("input_sent_seq") + backlog,
        ).update(input_seq=F("input_seq") + 1)
        if not taken:
            _refusal(node_id, pk)
        seq = TerminalSession.objects.values_list("input_seq", flat=True).get(pk=pk)
        row = TerminalInput(
            session_id=pk, seq=seq, key=bell["key"], kind=kind, data=data, cols=cols, rows=rows
        )
        row.full_clean(exclude=["session"])
        row.save(force_insert=True)
    return {
        "type": events.DOORBELL,
        "reason": RING_TERMINAL_STORED,
        "node_id": node_id,
        "session": str(pk),
        "seq": seq,
        "key": bell["key"],
    }


def terminal_keys_store_many(
    *, bells: list[dict[str, Any]]
) -> tuple[list[dict[str, Any]], Exception | None]:
    """Store a socket's inputs in order, each on its own; returns the "stored" bells of those
    stored and the error that stopped the rest (None when all were stored)."""
    stored: list[dict[str, Any]] = []
    for bell in bells:
        try:
            stored.append(terminal_keys_store(bell=bell))
        except CortexError as exc:
            return stored, exc
    return stored, None


def _refusal(node_id: str, pk: Any) -> None:
    status = node_terminals(node_id).filter(pk=pk).values_list("status", flat=True).first()
    if status is None:
        raise TerminalNotFound("No such terminal.")
    if status not in OPEN_TERMINAL_STATUSES:
        raise TerminalEnded("This terminal has ended.")
    raise TerminalInputBacklog(
        "The node has not taken this terminal's input for a while; wait for it to come back."
    )


def terminal_inputs_to_send(
    *, node_id: str, after: dict[str, int], resend: int = 0
) -> list[tuple[str, int, str, str, str, int, int]]:
    """Stored inputs of the node's open sessions, in order: (session, seq, key, kind, data,
    cols, rows). After `after[session]` when given (what this stream sent), else after what
    was marked sent less `resend` (a node that applies each key once may have missed those)."""
    sessions = dict(
        node_terminals(node_id)
        .filter(status__in=OPEN_TERMINAL_STATUSES, input_seq__gt=0)
        .values_list("pk", "input_sent_seq")
    )
    if not sessions:
        return []
    since = {
        str(pk): after.get(str(pk), max(int(sent or 0) - resend, 0))
        for pk, sent in sessions.items()
    }
    rows = TerminalInput.objects.filter(session_id__in=list(sessions)).values_list(
        "session_id", "seq", "key", "kind", "data", "cols", "rows"
    )
    return [
        (str(session), seq, key, kind, data, cols, size)
        for session, seq, key, kind, data, cols, size in rows.order_by("session_id", "seq")
        if seq > since[str(session)]
    ]


def terminal_inputs_sent(*, node_id: str, sent: dict[str, int]) -> None:
    """Mark inputs as gone onto the node's stream (frees backlog) and trim all but the last
    KEEP_SENT of them."""
    for session_id, seq in sent.items():
        pk = session_uuid(session_id)
        with transaction.atomic():
            node_terminals(node_id).filter(pk=pk, input_sent_seq__lt=seq).update(input_sent_seq=seq)
            TerminalInput.objects.filter(session_id=pk, seq__lte=seq - KEEP_SENT).delete()


def terminal_inputs_drop(*, session_ids: list[Any]) -> None:
    """Sessions that ended: what they still had stored is never sent."""
    TerminalInput.objects.filter(session_id__in=session_ids).delete()
