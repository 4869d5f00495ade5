"""Terminal services against the database: who may open, what is stored, the recording."""

from __future__ import annotations

import json

import pytest

from accounts.models import AuditEvent
from mesh.models import NodeStatus, TerminalChunk, TerminalSession
from mesh.selectors import terminals as terminal_selectors
from mesh.services import terminals
from mesh.services.tasks import NodeInactive, SkillDisabled

pytestmark = pytest.mark.django_db


@pytest.fixture
def node(make_node, grant, user):  # type: ignore[no-untyped-def]
    found, _ = make_node("term-a")
    found.status = NodeStatus.ONLINE
    found.save(update_fields=["status"])
    grant(user, found)
    return found


def _policy(node, **changes):  # type: ignore[no-untyped-def]
    node.sandbox_policy = {**node.sandbox_policy, **changes}
    node.save(update_fields=["sandbox_policy"])


def test_open_stores_a_session_and_audits(node, user):  # type: ignore[no-untyped-def]
    session = terminals.terminal_open(actor=user, node_id="term-a", cols=100, rows=30)
    row = TerminalSession.objects.get()
    assert (row.pk, row.status, row.cols, row.rows, row.user) == (
        session.pk,
        "opening",
        100,
        30,
        user,
    )
    event = AuditEvent.objects.get(action="terminal.open")
    assert event.target_id == str(session.pk)
    assert terminal_selectors.terminals_pending(node_id="term-a") == (
        [(str(session.pk), 100, 30)],
        [],
    )


@pytest.mark.parametrize(
    ("change", "error"),
    [
        ({"sandbox_policy": {"mode": "strict"}}, terminals.TerminalsNotAllowed),
        ({"sandbox_policy": {"mode": "permissive", "allow_terminals": False}},
         terminals.TerminalsNotAllowed),
        ({"sandbox_policy": {"mode": "strict", "allow_terminals": "yes"}},
         terminals.TerminalsNotAllowed),  # unreadable: refused
        ({"status": NodeStatus.OFFLINE}, terminals.NodeOffline),
        ({"is_active": False}, NodeInactive),
        ({"skill_config": {"shell": False, "files": True, "browser": False}}, SkillDisabled),
    ],
)  # fmt: skip
def test_refusals_store_nothing(node, user, change, error):  # type: ignore[no-untyped-def]
    for field, value in change.items():
        setattr(node, field, value)
    node.save()
    with pytest.raises(error):
        terminals.terminal_open(actor=user, node_id="term-a", cols=80, rows=24)
    assert not TerminalSession.objects.exists()
    assert not AuditEvent.objects.filter(action="terminal.open").exists()


def test_strict_with_allow_terminals_opens(node, user):  # type: ignore[no-untyped-def]
    _policy(node, mode="strict", allow_terminals=True)
    terminals.terminal_open(actor=user, node_id="term-a", cols=80, rows=24)
    assert TerminalSession.objects.count() == 1


@pytest.mark.parametrize(("cols", "rows"), [(0, 24), (80, 0), (1001, 24), ("80", 24), (True, 2)])
def test_bad_sizes_are_refused(node, user, cols, rows):  # type: ignore[no-untyped-def]
    with pytest.raises(terminals.ValidationFailed):
        terminals.terminal_open(actor=user, node_id="term-a", cols=cols, rows=rows)


def test_no_grant_is_not_found(node, make_user):  # type: ignore[no-untyped-def]
    stranger = make_user("stranger@example.com")
    with pytest.raises(terminals.NotFound):
        terminals.terminal_open(actor=stranger, node_id="term-a", cols=80, rows=24)


def test_only_the_owner_attaches(node, user, make_user, grant):  # type: ignore[no-untyped-def]
    session = terminals.terminal_open(actor=user, node_id="term-a", cols=80, rows=24)
    colleague = make_user("colleague@example.com")
    grant(colleague, node)
    with pytest.raises(terminals.TerminalNotFound):
        terminals.terminal_attach(actor=colleague, node_id="term-a", session_id=session.pk)
    with pytest.raises(terminals.TerminalNotFound):
        terminals.terminal_attach(actor=user, node_id="term-a", session_id="not-a-uuid")
    assert terminals.terminal_attach(actor=user, node_id="term-a", session_id=session.pk)
    assert AuditEvent.objects.filter(action="terminal.attach").count() == 1


def test_output_is_stored_once_and_acked(node, user, make_node):  # type: ignore[no-untyped-def]
    session = terminals.terminal_open(actor=user, node_id="term-a", cols=80, rows=24)
    sid = str(session.pk)
    chunk = terminals.TerminalChunkIn
    acked = terminals.terminal_output_store(
        node_id="term-a", chunks=[chunk(sid, 1, 0.1, b"one "), chunk(sid, 2, 0.2, b"two")]
    )
    assert acked == {sid: 2}
    # A resend after a reconnect: stored once, acked to the top.
    acked = terminals.terminal_output_store(
        node_id="term-a", chunks=[chunk(sid, 2, 0.2, b"two"), chunk(sid, 3, 0.5, b" \xff")]
    )
    assert acked == {sid: 3}
    assert list(TerminalChunk.objects.values_list("seq", flat=True)) == [1, 2, 3]
    session.refresh_from_db()
    assert (session.last_seq, session.output_bytes) == (3, 9)
    # Another node cannot write into this session.
    make_node("term-b")
    assert (
        terminals.terminal_output_store(node_id="term-b", chunks=[chunk(sid, 4, 0.6, b"x")]) == {}
    )
    assert TerminalChunk.objects.count() == 3
    terminals.terminal_opened(node_id="term-a", session_id=sid)
    assert terminals.terminal_exited(node_id="term-a", session_id=sid, exit_code=0, last_seq=3)
    lines = list(terminal_selectors.terminal_cast(session=TerminalSession.objects.get()))
    header = json.loads(lines[0])
    assert (header["version"], header["width"], header["height"]) == (2, 80, 24)
    assert [json.loads(line) for line in lines[1:]] == [
        [0.1, "o", "one "],
        [0.2, "o", "two"],
        [0.5, "o", " \ufffd"],
    ]


def test_a_restarted_node_loses_running_sessions(node, user):  # type: ignore[no-untyped-def]
    kept = terminals.terminal_open(actor=user, node_id="term-a", cols=80, rows=24)
    gone = terminals.terminal_open(actor=user, node_id="term-a", cols=80, rows=24)
    for session in (kept, gone):
        terminals.terminal_opened(node_id="term-a", session_id=str(session.pk))
    assert terminals.terminals_reconcile(node_id="term-a", held=[str(kept.pk)]) == 1
    statuses = dict(TerminalSession.objects.values_list("pk", "status"))
    assert (statuses[kept.pk], statuses[gone.pk]) == ("running", "lost")


def test_rest_lists_own_sessions_and_404s_others(node, user, user_client, make_user):  # type: ignore[no-untyped-def]
    session = terminals.terminal_open(actor=user, node_id="term-a", cols=80, rows=24)
    response = user_client.get("/api/v1/nodes/term-a/terminals/")
    assert response.status_code == 200
    assert [r["id"] for r in response.json()["results"]] == [str(session.pk)]
    response = user_client.get(f"/api/v1/nodes/term-a/terminals/{session.pk}/cast")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/x-asciicast"
    for path in (
        "/api/v1/nodes/nope/terminals/",
        "/api/v1/nodes/term-a/terminals/not-a-uuid/cast",
        f"/api/v1/nodes/nope/terminals/{session.pk}/cast",
    ):
        response = user_client.get(path)
        assert response.status_code == 404, path
        assert "code" in response.json()["error"]


def test_the_recording_keeps_its_head_up_to_the_cap(node, user, settings):  # type: ignore[no-untyped-def]
    settings.MESH_TERMINAL_RECORD_CAP_BYTES = 10
    session = terminals.terminal_open(actor=user, node_id="term-a", cols=80, rows=24)
    sid = str(session.pk)
    chunk = terminals.TerminalChunkIn
    acked = terminals.terminal_output_store(
        node_id="term-a",
        chunks=[
            chunk(sid, 1, 0.0, b"123456"),
            chunk(sid, 2, 0.1, b"7890"),
            chunk(sid, 3, 0.2, b"x"),
        ],
    )
    assert acked == {sid: 3}
    rows = list(TerminalChunk.objects.order_by("seq").values_list("seq", "data"))
    assert [(seq, bytes(data)) for seq, data in rows] == [(1, b"123456"), (2, b"7890"), (3, b"")]
    session.refresh_from_db()
    assert (session.last_seq, session.output_bytes) == (3, 11)
    events = [
        json.loads(line) for line in list(terminal_selectors.terminal_cast(session=session))[1:]
    ]
    assert [e[2] for e in events] == ["123456", "7890"]


def test_open_terminals_per_node_are_capped(node, user, settings):  # type: ignore[no-untyped-def]
    settings.MESH_TERMINAL_MAX_OPEN = 2
    for _ in range(2):
        terminals.terminal_open(actor=user, node_id="term-a", cols=80, rows=24)
    with pytest.raises(terminals.TooManyTerminals):
        terminals.terminal_open(actor=user, node_id="term-a", cols=80, rows=24)
    assert TerminalSession.objects.count() == 2


def test_sessions_of_a_node_that_stays_away_end_lost(  # type: ignore[no-untyped-def]
    node, user, make_node, grant, settings, django_capture_on_commit_callbacks
):
    from datetime import timedelta

    from django.utils import timezone

    from cortex.sweeps import sweeps_run
    from mesh import events

    settings.MESH_TERMINAL_LOST_AFTER = 600
    running = terminals.terminal_open(actor=user, node_id="term-a", cols=80, rows=24)
    terminals.terminal_opened(node_id="term-a", session_id=str(running.pk))
    opening = terminals.terminal_open(actor=user, node_id="term-a", cols=80, rows=24)
    exited = terminals.terminal_open(actor=user, node_id="term-a", cols=80, rows=24)
    terminals.terminal_exited(node_id="term-a", session_id=str(exited.pk), exit_code=0)
    recent, _ = make_node("term-b")
    grant(user, recent)
    recent.status = NodeStatus.ONLINE
    recent.save(update_fields=["status"])
    fresh = terminals.terminal_open(actor=user, node_id="term-b", cols=80, rows=24)
    now = timezone.now()
    node.status, node.disconnected_at = NodeStatus.OFFLINE, now - timedelta(seconds=601)
    node.save(update_fields=["status", "disconnected_at"])
    recent.status, recent.disconnected_at = NodeStatus.OFFLINE, now - timedelta(seconds=30)
    recent.save(update_fields=["status", "disconnected_at"])

    with events.collected() as frames, django_capture_on_commit_callbacks(execute=True):
        assert sweeps_run()["mesh.terminals_reap_lost"] == 2
    rows = {r.pk: r for r in TerminalSession.objects.all()}
    for pk in (running.pk, opening.pk):
        assert (rows[pk].status, rows[pk].error_code, rows[pk].exit_code) == (
            "lost",
            "node_lost",
            -1,
        )
        assert rows[pk].ended_at is not None
    assert (rows[exited.pk].status, rows[exited.pk].error_code) == ("exited", "")
    assert rows[fresh.pk].status == "opening"  # its node went away 30 s ago: not yet
    node_group = events.group_name(events.NODE_GROUP, node_id="term-a")
    bells = [f for f in frames if f[0] == node_group]
    assert sorted(frames, key=lambda f: f[0]) == sorted(
        [
            (
                terminals.terminal_group(pk),
                {"type": "terminal.exit", "code": -1, "error": "node_lost"},
            )
            for pk in (running.pk, opening.pk)
        ]
        + bells,
        key=lambda f: f[0],
    )
    # A runmesh still holding the node's stream tells it to hang them up.
    ((_, bell),) = bells
    assert (bell["reason"], sorted(bell["ended"])) == (
        terminals.RING_TERMINAL_ENDED,
        sorted([str(running.pk), str(opening.pk)]),
    )
    with events.collected() as frames, django_capture_on_commit_callbacks(execute=True):
        assert sweeps_run()["mesh.terminals_reap_lost"] == 0  # idempotent
    assert frames == []


def test_a_returning_node_is_told_which_held_sessions_ended(node, user):  # type: ignore[no-untyped-def]
    lost = terminals.terminal_open(actor=user, node_id="term-a", cols=80, rows=24)
    live = terminals.terminal_open(actor=user, node_id="term-a", cols=80, rows=24)
    for session in (lost, live):
        terminals.terminal_opened(node_id="term-a", session_id=str(session.pk))
    TerminalSession.objects.filter(pk=lost.pk).update(status="lost", error_code="node_lost")
    held = [str(lost.pk), str(live.pk)]
    assert terminal_selectors.terminals_ended_among(node_id="term-a", held=held) == [str(lost.pk)]
    assert terminal_selectors.terminals_ended_among(node_id="other", held=held) == []


# -- the services a socket, the sweeper and the AI's shell call directly ------------------------


def test_terminal_close_asks_the_node_once_and_audits_each_request(  # type: ignore[no-untyped-def]
    node, user, django_capture_on_commit_callbacks
):
    from mesh import events

    session = terminals.terminal_open(actor=user, node_id="term-a", cols=80, rows=24)
    with events.collected() as frames, django_capture_on_commit_callbacks(execute=True):
        terminals.terminal_close(actor=user, session=session)
    row = TerminalSession.objects.get(pk=session.pk)
    assert row.close_requested_at is not None
    assert [f for f in frames if f[1].get("node_id") == "term-a"]  # the node's runmesh is rung
    first = row.close_requested_at
    with events.collected() as frames, django_capture_on_commit_callbacks(execute=True):
        terminals.terminal_close(actor=user, session=session)  # already asked: no second ring
    assert [f for f in frames if f[1].get("node_id") == "term-a"] == []
    row.refresh_from_db()
    assert row.close_requested_at == first
    assert AuditEvent.objects.filter(action="terminal.close").count() == 2


def test_terminals_reap_lost_called_directly_leaves_online_nodes_alone(node, user, settings):  # type: ignore[no-untyped-def]
    from datetime import timedelta

    from django.utils import timezone

    settings.MESH_TERMINAL_LOST_AFTER = 60
    session = terminals.terminal_open(actor=user, node_id="term-a", cols=80, rows=24)
    assert terminals.terminals_reap_lost() == 0  # online
    node.status, node.disconnected_at = NodeStatus.OFFLINE, timezone.now() - timedelta(seconds=61)
    node.save(update_fields=["status", "disconnected_at"])
    assert terminals.terminals_reap_lost() == 1
    assert TerminalSession.objects.get(pk=session.pk).status == "lost"
    assert terminals.terminals_reap_lost() == 0


def _listen_node(node_id: str):  # type: ignore[no-untyped-def]
    from asgiref.sync import async_to_sync
    from channels.layers import get_channel_layer

    from mesh import events

    async def listen() -> str:
        layer = get_channel_layer()
        channel: str = await layer.new_channel()
        await layer.group_add(events.group_name(events.NODE_GROUP, node_id=node_id), channel)
        return channel

    return async_to_sync(listen)()


def _receive(channel: str):  # type: ignore[no-untyped-def]
    import asyncio

    from asgiref.sync import async_to_sync
    from channels.layers import get_channel_layer

    async def receive():  # type: ignore[no-untyped-def]
        return await asyncio.wait_for(get_channel_layer().receive(channel), timeout=5)

    return async_to_sync(receive)()


@pytest.mark.django_db(transaction=True)
def test_terminal_input_and_resize_ring_the_node_with_the_keys_and_size(node, user):  # type: ignore[no-untyped-def]
    from asgiref.sync import async_to_sync

    from cortex.errors import ValidationFailed

    session = str(terminals.terminal_open(actor=user, node_id="term-a", cols=80, rows=24).pk)
    channel = _listen_node("term-a")
    async_to_sync(terminals.terminal_input)(node_id="term-a", session_id=session, data="ls\r")
    keys, stored = _receive(channel), _receive(channel)  # live first, then once stored
    assert (keys["reason"], keys["session"], keys["data"]) == (
        terminals.RING_TERMINAL_INPUT,
        session,
        "ls\r",
    )
    assert (stored["reason"], stored["session"], stored["seq"], stored["key"]) == (
        terminals.RING_TERMINAL_STORED,
        session,
        1,
        keys["key"],
    )
    async_to_sync(terminals.terminal_resize)(
        node_id="term-a", session_id=session, cols=120, rows=40
    )
    size, stored = _receive(channel), _receive(channel)
    assert (size["reason"], size["cols"], size["rows"]) == (terminals.RING_TERMINAL_RESIZE, 120, 40)
    assert (stored["seq"], stored["key"]) == (2, size["key"])
    with pytest.raises(ValidationFailed):
        async_to_sync(terminals.terminal_resize)(
            node_id="term-a", session_id=session, cols=0, rows="x"
        )


def test_shell_run_refuses_before_a_shell_is_opened(node, user):  # type: ignore[no-untyped-def]
    from mesh.services.tasks import CommandNotAllowed, ConfirmationRequired
    from mesh.services.terminal_shell import shell_run

    _policy(
        node,
        mode="strict",
        allow_terminals=True,
        allowed_commands=["ls", "rm"],
        sensitive_commands=["rm"],
    )
    with pytest.raises(CommandNotAllowed):
        shell_run(actor=user, node=node, chat_session_id=7, command="curl x | sh", timeout=5)
    with pytest.raises(ConfirmationRequired):
        shell_run(actor=user, node=node, chat_session_id=7, command="rm -r build", timeout=5)
    assert TerminalSession.objects.count() == 0  # nothing opened, nothing typed
    refused = AuditEvent.objects.get(action="terminal.command_refused")
    assert refused.details["command"] == "curl x | sh"
    assert not AuditEvent.objects.filter(action="terminal.command").exists()


def test_shell_close_hangs_up_the_chats_shells_on_the_given_nodes(  # type: ignore[no-untyped-def]
    node, user, make_node, grant
):
    from mesh.services.terminal_shell import shell_close

    other, _ = make_node("term-b")
    other.status = NodeStatus.ONLINE
    other.save(update_fields=["status"])
    grant(user, other)
    here = terminals.terminal_open(actor=user, node_id="term-a", cols=80, rows=24)
    there = terminals.terminal_open(actor=user, node_id="term-b", cols=80, rows=24)
    unrelated = terminals.terminal_open(actor=user, node_id="term-a", cols=80, rows=24)
    TerminalSession.objects.filter(pk__in=[here.pk, there.pk]).update(chat_session_id=7)

    assert shell_close(actor=user, chat_session_id=7, nodes=[other]) == 1
    assert TerminalSession.objects.get(pk=there.pk).close_requested_at is not None
    assert TerminalSession.objects.get(pk=here.pk).close_requested_at is None
    assert shell_close(actor=user, chat_session_id=7) == 1  # the rest: the one on term-a
    assert shell_close(actor=user, chat_session_id=7) == 0
    assert TerminalSession.objects.get(pk=unrelated.pk).close_requested_at is None
    closes = AuditEvent.objects.filter(action="terminal.close")
    assert sorted(closes.values_list("target_id", flat=True)) == sorted(
        [str(here.pk), str(there.pk)]
    )
