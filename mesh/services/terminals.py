"""Interactive terminals: open, attach, close (checked and audited), and the node's reports.

A session is a row (`TerminalSession`); its output is stored as numbered chunks with timings
(`TerminalChunk`), so a re-attach or a replay reads rows, not a process's memory. Opening stores
the row and rings the node's doorbell; the runmesh holding the node's stream sends TerminalOpen
(`terminals_pending`). Keystrokes and resizes are rung live and stored in order
(`terminal_keys`), so those typed while no runmesh holds the node's stream are sent when it joins.

Who may open: a user with a grant on the node, on an active node whose shell skill is on and
whose policy allows terminals (`Policy.terminals_allowed`: permissive by default, strict only
with `allow_terminals: true`), since a keystroke stream cannot be checked command by command.
Only the user who opened a session may attach to it; admins may read every recording.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import F
from django.utils import timezone

from accounts.context import DEFAULT_CONTEXT, AuditContext
from accounts.services import audit_record, audit_refusal
from cortex.errors import Conflict, NotFound, PermissionDenied, ValidationFailed
from cortex.services import db_unit
from mesh import events, selectors
from mesh.models import (
    OPEN_TERMINAL_STATUSES,
    Node,
    NodeStatus,
    TerminalChunk,
    TerminalInputKind,
    TerminalSession,
    TerminalStatus,
)
from mesh.selectors import terminals as terminal_selectors
from mesh.selectors.terminals import TerminalNotFound, session_uuid
from mesh.services import terminal_keys
from mesh.services.tasks import NodeInactive, SkillDisabled

#: The session's live frames (terminal.output, terminal.exit) for its attached sockets.
TERMINAL_GROUP = "mesh.terminal.{session_id}"
#: Doorbell reasons (handled by the runmesh holding the node's stream).
RING_TERMINAL = "terminal.pending"  # look at the database: opens and closes to send
RING_TERMINAL_INPUT = terminal_keys.RING_TERMINAL_INPUT
RING_TERMINAL_RESIZE = terminal_keys.RING_TERMINAL_RESIZE
RING_TERMINAL_STORED = terminal_keys.RING_TERMINAL_STORED
RING_TERMINAL_ENDED = "terminal.ended"  # sessions the hub ended: the node must hang them up
MAX_COLS = 1000
MAX_ROWS = 500
#: error_code of a session ended because its node stayed away (`terminals_reap_lost`).
NODE_LOST = "node_lost"


class TerminalsNotAllowed(PermissionDenied):
    code = "terminals_not_allowed"


class NodeOffline(Conflict):
    code = "node_offline"


class TooManyTerminals(Conflict):
    code = "too_many_terminals"


@dataclass(frozen=True)
class TerminalChunkIn:
    """One TerminalOutput as received from a node."""

    session_id: str
    seq: int
    at: float
    data: bytes


def terminal_group(session_id: Any) -> str:
    return events.group_name(TERMINAL_GROUP, session_id=session_id)


def _size(cols: Any, rows: Any) -> tuple[int, int]:
    problems: dict[str, list[str]] = {}
    for name, value, top in (("cols", cols, MAX_COLS), ("rows", rows, MAX_ROWS)):
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= top:
            problems[name] = [f"Must be an integer from 1 to {top}."]
    if problems:
        raise ValidationFailed(fields=problems)
    return int(cols), int(rows)


def terminal_open(
    *,
    actor: Any,
    node_id: str,
    cols: Any,
    rows: Any,
    audit_context: AuditContext = DEFAULT_CONTEXT,
    chat_session_id: int | None = None,
) -> TerminalSession:
    """Store a new session and ring the node; refusals are audited (one a minute per actor).

    Raises NotFound (no grant), NodeInactive, SkillDisabled, TerminalsNotAllowed, NodeOffline
    or ValidationFailed (size); nothing is stored then.
    """
    cols, rows = _size(cols, rows)
    node = selectors.node_get_for_user(user=actor, node_id=node_id)
    if not selectors.node_usable_for(user=actor, node=node):
        raise NotFound("No such node.")
    try:
        _check_node(node)
    except (TerminalsNotAllowed, SkillDisabled, NodeInactive) as exc:
        audit_refusal(
            actor=actor,
            action="terminal.refused",
            reason=exc.code,
            target_type="node",
            target_id=node.node_id,
            audit_context=audit_context,
            details={"node_id": node.node_id},
        )
        raise
    limit = int(settings.MESH_TERMINAL_MAX_OPEN)
    if (
        TerminalSession.objects.filter(node=node, status__in=OPEN_TERMINAL_STATUSES).count()
        >= limit
    ):
        raise TooManyTerminals(f"This node has {limit} open terminals; close one first.")
    with transaction.atomic():
        session = TerminalSession(
            node=node, user=actor, cols=cols, rows=rows, chat_session_id=chat_session_id
        )
        session.full_clean()
        audit_record(
            actor=actor,
            action="terminal.open",
            target_type="terminal",
            target_id=str(session.pk),
            audit_context=audit_context,
            details={"node_id": node.node_id, "cols": cols, "rows": rows},
        )
        session.save(force_insert=True)
        events.ring_node(node.node_id, RING_TERMINAL)
    return session


def _check_node(node: Node) -> None:
    from mesh.agent.sandbox import Policy

    if not node.is_active:
        raise NodeInactive()
    if not (node.skill_config or {}).get("shell", False):
        raise SkillDisabled("The shell skill is switched off on this node.")
    try:
        allowed = Policy.from_dict(node.sandbox_policy).terminals_allowed
    except ValueError:
        allowed = False  # a policy this hub cannot read allows nothing
    if not allowed:
        raise TerminalsNotAllowed(
            "This node's policy does not allow interactive terminals"
            " (strict mode needs allow_terminals: true)."
        )
    if node.status == NodeStatus.OFFLINE:
        raise NodeOffline("The node is offline.")


def terminal_attach(
    *, actor: Any, node_id: str, session_id: Any, audit_context: AuditContext = DEFAULT_CONTEXT
) -> TerminalSession:
    """Re-attach the session's owner to it (audited); anyone else gets TerminalNotFound."""
    session = terminal_selectors.terminal_get_for_user(
        user=actor, node_id=node_id, session_id=session_id
    )
    if session.user_id != actor.pk or not selectors.node_usable_for(user=actor, node=session.node):
        raise TerminalNotFound("No such terminal.")
    audit_record(
        actor=actor,
        action="terminal.attach",
        target_type="terminal",
        target_id=str(session.pk),
        audit_context=audit_context,
        details={"node_id": node_id},
    )
    return session


def terminal_close(
    *, actor: Any, session: TerminalSession, audit_context: AuditContext = DEFAULT_CONTEXT
) -> None:
    """Ask the node to hang the session up (audited); its exit ends the row."""
    with transaction.atomic():
        updated = TerminalSession.objects.filter(
            pk=session.pk, status__in=OPEN_TERMINAL_STATUSES, close_requested_at__isnull=True
        ).update(close_requested_at=timezone.now())
        audit_record(
            actor=actor,
            action="terminal.close",
            target_type="terminal",
            target_id=str(session.pk),
            audit_context=audit_context,
            details={"node_id": session.node.node_id},
        )
        if updated:
            events.ring_node(session.node.node_id, RING_TERMINAL)


# ---------------------------------------------------------------------------------- node side
def terminals_reconcile(*, node_id: str, held: list[str]) -> int:
    """After a Hello: running sessions the node no longer holds end `lost`."""
    ids = {str(session_uuid(h)) for h in held}
    lost = (
        terminal_selectors.node_terminals(node_id)
        .filter(status=TerminalStatus.RUNNING)
        .exclude(pk__in=ids)
    )
    ended = list(lost.values_list("pk", flat=True))
    if ended:
        now = timezone.now()
        TerminalSession.objects.filter(pk__in=ended).update(
            status=TerminalStatus.LOST, error_code="node_restarted", ended_at=now, exit_code=-1
        )
        terminal_keys.terminal_inputs_drop(session_ids=ended)
        for pk in ended:
            events.send_on_commit(
                terminal_group(pk), {"type": "terminal.exit", "code": -1, "error": "node_restarted"}
            )
    return len(ended)


def terminals_reap_lost() -> int:
    """Sweep: open sessions on nodes offline for longer than `MESH_TERMINAL_LOST_AFTER` end
    `lost` (error `node_lost`). The node is told to hang them up: at once if a runmesh still
    holds its stream (a node that stalled), else by its next Hello (`terminals_ended_among`)."""
    cutoff = timezone.now() - timedelta(seconds=float(settings.MESH_TERMINAL_LOST_AFTER))
    stale = TerminalSession.objects.filter(
        status__in=OPEN_TERMINAL_STATUSES,
        node__status=NodeStatus.OFFLINE,
        node__disconnected_at__lt=cutoff,
    )
    found = list(stale.values_list("pk", "node__node_id"))
    ended = [pk for pk, _ in found]
    if not ended:
        return 0
    with transaction.atomic():
        count = TerminalSession.objects.filter(
            pk__in=ended, status__in=OPEN_TERMINAL_STATUSES
        ).update(
            status=TerminalStatus.LOST,
            error_code=NODE_LOST,
            ended_at=timezone.now(),
            exit_code=-1,
            close_requested_at=None,
        )
        terminal_keys.terminal_inputs_drop(session_ids=ended)
        for pk in ended:
            events.send_on_commit(
                terminal_group(pk), {"type": "terminal.exit", "code": -1, "error": NODE_LOST}
            )
        by_node: dict[str, list[str]] = {}
        for pk, node_id in found:
            by_node.setdefault(node_id, []).append(str(pk))
        for node_id, sessions in by_node.items():
            bell = {"type": events.DOORBELL, "reason": RING_TERMINAL_ENDED, "node_id": node_id}
            events.send_on_commit(
                events.group_name(events.NODE_GROUP, node_id=node_id), {**bell, "ended": sessions}
            )
    return count


def terminal_opened(*, node_id: str, session_id: str) -> None:
    terminal_selectors.node_terminals(node_id).filter(
        pk=session_uuid(session_id), status=TerminalStatus.OPENING
    ).update(status=TerminalStatus.RUNNING, started_at=timezone.now())


def terminal_output_store(*, node_id: str, chunks: list[TerminalChunkIn]) -> dict[str, int]:
    """Store a batch (each seq once); returns the highest stored seq per session to ack.

    Chunks of sessions that are not this node's are dropped (and not acked).
    """
    wanted = {session_uuid(c.session_id) for c in chunks}
    found = terminal_selectors.node_terminals(node_id).filter(pk__in=wanted)
    known = list(found.values_list("pk", "last_seq", "output_bytes"))
    current = {str(pk): last for pk, last, _ in known}
    cap = int(settings.MESH_TERMINAL_RECORD_CAP_BYTES)
    room = {str(pk): cap - produced for pk, _, produced in known}
    # One stream delivers a session's chunks in order, so what is stored is always 1..last_seq:
    # a resent chunk at or below it is a duplicate. Past the recording cap a chunk is stored
    # empty: seqs stay contiguous (a replay never waits on a gap), `output_bytes` counts it.
    rows = []
    produced: dict[str, int] = {}
    for c in chunks:
        if c.session_id not in current or c.seq <= current[c.session_id]:
            continue
        fits = len(c.data) <= room[c.session_id]
        room[c.session_id] -= len(c.data)
        produced[c.session_id] = produced.get(c.session_id, 0) + len(c.data)
        data = c.data if fits else b""
        rows.append(TerminalChunk(session_id=c.session_id, seq=c.seq, at=max(c.at, 0.0), data=data))
    acked = dict(current)
    with transaction.atomic():
        TerminalChunk.objects.bulk_create(rows, ignore_conflicts=True)
        for session_id, last in current.items():
            mine = [r.seq for r in rows if r.session_id == session_id]
            if not mine:
                continue
            TerminalSession.objects.filter(pk=session_id).update(
                last_seq=max(mine), output_bytes=F("output_bytes") + produced[session_id]
            )
            acked[session_id] = max(last, max(mine))
    return acked


def terminal_exited(
    *,
    node_id: str,
    session_id: str,
    exit_code: int,
    error_code: str = "",
    last_seq: int = 0,
) -> bool:
    """The node's exit (or refusal) for a session; returns whether the session is this node's."""
    session = terminal_selectors.node_terminals(node_id).filter(pk=session_uuid(session_id)).first()
    if session is None:
        return False
    if session.status in OPEN_TERMINAL_STATUSES:
        status = TerminalStatus.REFUSED if error_code else TerminalStatus.EXITED
        TerminalSession.objects.filter(pk=session.pk).update(
            status=status,
            exit_code=exit_code,
            error_code=error_code[:64],
            ended_at=timezone.now(),
            close_requested_at=None,
        )
        terminal_keys.terminal_inputs_drop(session_ids=[session.pk])
        frame: dict[str, Any] = {"type": "terminal.exit", "code": exit_code}
        if error_code:
            frame["error"] = error_code[:64]
        events.send_on_commit(terminal_group(session.pk), frame)
    return True


def terminal_input_bell(
    *, node_id: str, session_id: Any, data: str, writer: str = "", n: int = 1
) -> dict[str, Any]:
    """The live doorbell of keystrokes for a session, the `n`th input of `writer` (a socket);
    see `terminal_keys`."""
    return terminal_keys.terminal_keys_bell(
        node_id=node_id,
        session_id=session_id,
        kind=TerminalInputKind.INPUT,
        data=data,
        writer=writer,
        n=n,
    )


def terminal_resize_bell(
    *, node_id: str, session_id: Any, cols: Any, rows: Any, writer: str = "", n: int = 1
) -> dict[str, Any]:
    """The live doorbell of a new window size; raises ValidationFailed for a bad size."""
    cols, rows = _size(cols, rows)
    return terminal_keys.terminal_keys_bell(
        node_id=node_id,
        session_id=session_id,
        kind=TerminalInputKind.RESIZE,
        cols=cols,
        rows=rows,
        writer=writer,
        n=n,
    )


def _node_group(bell: dict[str, Any]) -> str:
    return events.group_name(events.NODE_GROUP, node_id=bell["node_id"])


async def terminal_keys_ring(bell: dict[str, Any]) -> None:
    """Ring an input's live bell (a runmesh holding the node's stream sends it at once)."""
    await events.asend(_node_group(bell), bell)


async def terminal_keys_commit(bells: list[dict[str, Any]]) -> None:
    """Store a socket's inputs (already rung live), in order, and ring them as stored; raises
    the error that stopped the rest (`terminal_ended`, `terminal_input_backlog`, ...)."""
    stored, error = await _keys_store_many(bells=bells)
    if stored:
        await events.asend_many([(_node_group(bell), bell) for bell in stored])
    if error is not None:
        raise error


_keys_store_many = db_unit(terminal_keys.terminal_keys_store_many)
new_writer = terminal_keys.new_writer


async def terminal_input(*, node_id: str, session_id: Any, data: str) -> None:
    """Keystrokes for the node from one-off callers: rung, stored, rung as stored."""
    bell = terminal_input_bell(node_id=node_id, session_id=session_id, data=data)
    await terminal_keys_ring(bell)
    await terminal_keys_commit([bell])


async def terminal_resize(*, node_id: str, session_id: Any, cols: Any, rows: Any) -> None:
    """A new window size for the node, rung and stored like keystrokes."""
    bell = terminal_resize_bell(node_id=node_id, session_id=session_id, cols=cols, rows=rows)
    await terminal_keys_ring(bell)
    await terminal_keys_commit([bell])


def terminal_type(*, node_id: str, session_id: Any, data: str) -> None:
    """Keystrokes from sync code (the AI's shell): stored now, sent from storage once rung
    (after commit); no live bell, as nothing waits for an echo there."""
    bell = terminal_input_bell(node_id=node_id, session_id=session_id, data=data)
    stored = terminal_keys.terminal_keys_store(bell=bell)
    events.send_on_commit(events.group_name(events.NODE_GROUP, node_id=node_id), stored)
