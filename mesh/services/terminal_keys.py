"""Keystrokes and resizes for a node's terminal: stored in order, then rung to the stream holder.

The channel layer is a doorbell, not a store: a keystroke rung while no runmesh holds the node's
stream (the hub restarting, the node reconnecting, a runmesh that died with the stream) reaches
nobody. So every input is stored first, numbered per session (`TerminalInput`, bounded by
`MESH_TERMINAL_INPUT_BACKLOG` not yet sent), and only then rung, data included, for the fast
path. The runmesh that takes the node's stream sends what follows the seq the node says it
applied (Hello), in order, before any later keystroke; the node applies each seq once, so a
resend or two runmesh processes racing never type anything twice. A session that ends (its
exit, or `lost` when its node stays away) drops what it still had stored.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F

from cortex.errors import Conflict
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
#: Rows kept after they were sent, for a node that reconnects having missed the last ones.
KEEP_SENT = 64


class TerminalEnded(Conflict):
    code = "terminal_ended"


class TerminalInputBacklog(Conflict):
    code = "terminal_input_backlog"


def terminal_keys_store(
    *,
    node_id: str,
    session_id: Any,
    kind: str,
    data: str = "",
    cols: int = 0,
    rows: int = 0,
) -> dict[str, Any]:
    """Store one input or resize of an open session of the node; returns the doorbell to ring
    once committed. Raises TerminalNotFound, TerminalEnded, or TerminalInputBacklog (the node
    has been away for too many frames); nothing is stored then."""
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
        row = TerminalInput(session_id=pk, seq=seq, kind=kind, data=data, cols=cols, rows=rows)
        row.full_clean(exclude=["session"])
        row.save(force_insert=True)
    bell: dict[str, Any] = {
        "type": events.DOORBELL,
        "node_id": node_id,
        "session": str(pk),
        "seq": seq,
    }
    if kind == TerminalInputKind.RESIZE:
        bell.update(reason=RING_TERMINAL_RESIZE, cols=cols, rows=rows)
    else:
        bell.update(reason=RING_TERMINAL_INPUT, data=data)
    return bell


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
    *, node_id: str, after: dict[str, int]
) -> list[tuple[str, int, str, str, int, int]]:
    """Stored inputs of the node's open sessions, in order: (session, seq, kind, data, cols,
    rows). After `after[session]` when given (what the node applied or this stream sent),
    else after what was marked sent."""
    sessions = dict(
        node_terminals(node_id)
        .filter(status__in=OPEN_TERMINAL_STATUSES, input_seq__gt=0)
        .values_list("pk", "input_sent_seq")
    )
    if not sessions:
        return []
    since = {str(pk): after.get(str(pk), int(sent or 0)) for pk, sent in sessions.items()}
    rows = TerminalInput.objects.filter(session_id__in=list(sessions)).values_list(
        "session_id", "seq", "kind", "data", "cols", "rows"
    )
    return [
        (str(session), seq, kind, data, cols, size)
        for session, seq, kind, data, cols, size in rows.order_by("session_id", "seq")
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
