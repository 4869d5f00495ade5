"""Terminal input is stored in order before it is rung, bounded, and sent once per stream."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from mesh.models import NodeStatus, TerminalInput, TerminalSession
from mesh.selectors.terminals import TerminalNotFound
from mesh.services import terminal_keys, terminals
from mesh.services.terminal_keys import TerminalEnded, TerminalInputBacklog

pytestmark = pytest.mark.django_db


@pytest.fixture
def node(make_node, grant, user):  # type: ignore[no-untyped-def]
    found, _ = make_node("keys-a")
    found.status = NodeStatus.ONLINE
    found.save(update_fields=["status"])
    grant(user, found)
    return found


def _open(user) -> str:  # type: ignore[no-untyped-def]
    return str(terminals.terminal_open(actor=user, node_id="keys-a", cols=80, rows=24).pk)


def _store(session: str, data: str = "x", node_id: str = "keys-a") -> dict:  # type: ignore[type-arg]
    bell = terminal_keys.terminal_keys_bell(
        node_id=node_id, session_id=session, kind="input", data=data
    )
    return terminal_keys.terminal_keys_store(bell=bell)


def _sendable(**kwargs) -> list[tuple]:  # type: ignore[no-untyped-def,type-arg]
    """terminal_inputs_to_send without the keys (random): (session, seq, kind, data, ...)."""
    rows = terminal_keys.terminal_inputs_to_send(node_id=kwargs.pop("node_id", "keys-a"), **kwargs)
    return [(r[0], r[1], *r[3:]) for r in rows]


def _stored(session: str) -> list[tuple[int, str, str, int, int]]:
    return list(
        TerminalInput.objects.filter(session_id=uuid.UUID(session)).values_list(
            "seq", "kind", "data", "cols", "rows"
        )
    )


def test_input_and_resizes_are_stored_numbered_in_order_before_the_bell(node, user):  # type: ignore[no-untyped-def]
    session = _open(user)
    bell = terminal_keys.terminal_keys_bell(
        node_id="keys-a", session_id=session, kind="input", data="cd /tmp\r"
    )
    assert (bell["reason"], bell["data"], bell["session"]) == (
        "terminal.input",
        "cd /tmp\r",
        session,
    )
    assert terminal_keys.key_order(bell["key"]) == (bell["key"][:16], 1)
    first = terminal_keys.terminal_keys_store(bell=bell)
    assert (first["reason"], first["seq"], first["key"], first["node_id"]) == (
        "terminal.stored",
        1,
        bell["key"],
        "keys-a",
    )
    sized = terminal_keys.terminal_keys_bell(
        node_id="keys-a", session_id=session, kind="resize", cols=132, rows=43
    )
    assert terminal_keys.terminal_keys_store(bell=sized)["seq"] == 2
    _store(session, "ls\r")
    assert _stored(session) == [
        (1, "input", "cd /tmp\r", 0, 0),
        (2, "resize", "", 132, 43),
        (3, "input", "ls\r", 0, 0),
    ]
    # A joining stream gets everything after what was marked sent; or after what it names.
    assert [r[1] for r in _sendable(after={})] == [1, 2, 3]
    assert _sendable(after={session: 2}) == [(session, 3, "input", "ls\r", 0, 0)]
    assert _sendable(node_id="other", after={}) == []


def test_input_keys_name_their_writer_and_place() -> None:
    bell = terminal_keys.terminal_keys_bell(
        node_id="n",
        session_id="7f3a3f5e-3d67-4a59-8c55-0d1d93d4b2a9",
        kind="input",
        writer="w1",
        n=7,
    )
    assert bell["key"] == "w1.7"
    assert terminal_keys.key_order("w1.7") == ("w1", 7)
    for bad in ("", "w1", ".7", "w1.", "w1.x", "w1.-1"):
        assert terminal_keys.key_order(bad) is None


def test_input_for_no_session_an_ended_one_or_another_nodes_is_refused_unstored(node, user):  # type: ignore[no-untyped-def]
    session = _open(user)
    for bad in ("not-a-uuid", "00000000-0000-0000-0000-000000000000"):
        with pytest.raises(TerminalNotFound):
            _store(bad)
    with pytest.raises(TerminalNotFound):
        _store(session, node_id="other-node")
    TerminalSession.objects.filter(pk=session).update(status="exited")
    with pytest.raises(TerminalEnded):
        _store(session)
    assert TerminalInput.objects.count() == 0
    assert TerminalSession.objects.get(pk=session).input_seq == 0


def test_the_backlog_is_bounded_until_inputs_are_marked_sent(node, user, settings):  # type: ignore[no-untyped-def]
    settings.MESH_TERMINAL_INPUT_BACKLOG = 3
    session = _open(user)
    for n in range(3):
        _store(session, f"k{n}")
    with pytest.raises(TerminalInputBacklog) as refused:
        _store(session, "k3")
    assert refused.value.code == "terminal_input_backlog"
    assert [r[0] for r in _stored(session)] == [1, 2, 3]  # nothing stored for the refused one
    terminal_keys.terminal_inputs_sent(node_id="keys-a", sent={session: 2})
    terminal_keys.terminal_inputs_sent(node_id="keys-a", sent={session: 1})  # never backwards
    assert TerminalSession.objects.get(pk=session).input_sent_seq == 2
    assert _store(session, "k3")["seq"] == 4
    assert _sendable(after={}) == [
        (session, 3, "input", "k2", 0, 0),
        (session, 4, "input", "k3", 0, 0),
    ]
    # A node that applies each key once is sent the last ones marked sent again.
    assert [r[1] for r in _sendable(after={}, resend=1)] == [2, 3, 4]


def test_sent_inputs_are_trimmed_but_the_last_few_kept_for_a_reconnect(node, user, settings):  # type: ignore[no-untyped-def]
    settings.MESH_TERMINAL_INPUT_BACKLOG = 1000
    session = _open(user)
    total = terminal_keys.KEEP_SENT + 10
    for n in range(total):
        _store(session, f"k{n}")
    terminal_keys.terminal_inputs_sent(node_id="keys-a", sent={session: total})
    kept = [r[0] for r in _stored(session)]
    assert kept == list(range(total - terminal_keys.KEEP_SENT + 1, total + 1))
    # A stream that sent all but the last two sends exactly those.
    assert [r[1] for r in _sendable(after={session: total - 2})] == [total - 1, total]
    assert [r[1] for r in _sendable(after={}, resend=3)] == [total - 2, total - 1, total]


def test_a_session_that_ends_drops_what_it_had_stored(node, user, settings):  # type: ignore[no-untyped-def]
    settings.MESH_TERMINAL_LOST_AFTER = 60
    exited, lost, restarted = _open(user), _open(user), _open(user)
    for session in (exited, lost, restarted):
        terminals.terminal_opened(node_id="keys-a", session_id=session)
        _store(session, "typed while away\r")
    terminals.terminal_exited(node_id="keys-a", session_id=exited, exit_code=0)
    assert _stored(exited) == []
    terminals.terminals_reconcile(node_id="keys-a", held=[lost])  # `restarted` is not held
    assert _stored(restarted) == []
    assert len(_stored(lost)) == 1
    node.status, node.disconnected_at = NodeStatus.OFFLINE, timezone.now() - timedelta(seconds=61)
    node.save(update_fields=["status", "disconnected_at"])
    assert terminals.terminals_reap_lost() == 1
    assert TerminalInput.objects.count() == 0
    assert _sendable(after={}) == []
