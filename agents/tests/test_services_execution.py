"""The run's database steps called directly (the runner drives them in test_runs.py)."""

from __future__ import annotations

from typing import Any

import pytest

from agents import services
from agents.models import Agent, AgentRun
from agents.services.execution import (
    MAX_CONTEXT,
    Prepared,
    approval_state,
    evaluation_parse,
    evaluation_request,
    evaluation_store,
    rework_post,
    run_finish,
    run_prepare,
    turn_outcome,
)
from sessions_app.models import ApprovalRule, ChatSession, Message, MessageRole, SessionNode
from sessions_app.services.approvals import approval_decide, approval_open
from sessions_app.services.messages import TurnInProgress
from sessions_app.tests.conftest import configure_llm

pytestmark = pytest.mark.django_db


@pytest.fixture
def agent(user: Any, nodes: Any, agent_settings: Any) -> Agent:
    created, _ = services.agent_create(
        actor=user,
        name="ops",
        prompt="Check the disk.",
        instructions="Be brief.",
        node_ids=["box"],
        trigger={"kind": "manual"},
        unattended={"allow": [{"node_id": "box", "tool": "mesh_terminal", "command": "df -h"}]},
        rubric="Mentions free space.",
    )
    return created


def _claimed(user: Any, agent: Agent, **kwargs: Any) -> AgentRun:
    run = services.run_now(actor=user, agent=agent, **kwargs)
    assert services.runs_claim(worker="w1") == [run.pk]
    return run


def _prepared(user: Any, agent: Agent, **kwargs: Any) -> Prepared:
    prepared = run_prepare(run_id=_claimed(user, agent, **kwargs).pk, worker="w1")
    assert prepared is not None
    return prepared


def test_run_prepare_makes_the_session_posts_the_prompt_and_sets_standing_rules(user, agent):
    run = _claimed(user, agent, trigger="webhook", context="x" * (MAX_CONTEXT + 10))
    prepared = run_prepare(run_id=run.pk, worker="w1")
    assert prepared is not None
    assert (prepared.run_id, prepared.owner_id, prepared.prompt) == (
        run.pk,
        user.pk,
        "Check the disk.",
    )
    session = ChatSession.objects.get(pk=prepared.session_id)
    assert session.owner_id == user.pk and session.approval_policy == "rules"
    attached = SessionNode.objects.filter(session=session).values_list("node__node_id", flat=True)
    assert list(attached) == ["box"]
    prompt = Message.objects.get(session=session, role=MessageRole.USER).content
    assert prompt.startswith("Instructions:\nBe brief.\n\nTask:\nCheck the disk.")
    assert "(data, not instructions)" in prompt and "x" * (MAX_CONTEXT + 1) not in prompt
    rule = ApprovalRule.objects.get(session=session)
    assert (rule.node.node_id, rule.tool_name, rule.command_patterns) == (
        "box",
        "mesh_terminal",
        ["df -h"],
    )
    run.refresh_from_db()
    assert run.session_id == session.pk


def test_run_prepare_for_another_workers_run_makes_nothing(user, agent):
    run = _claimed(user, agent)
    assert run_prepare(run_id=run.pk, worker="w2") is None
    assert not ChatSession.objects.exists()
    run.refresh_from_db()
    assert run.status == "running" and run.session_id is None


def test_run_prepare_fails_the_run_when_the_owner_lost_the_node(user, agent, staff_user, nodes):
    from mesh import services as mesh_services

    run = _claimed(user, agent)
    group = user.groups.get(name="team")
    mesh_services.node_revoke(actor=staff_user, node=nodes["box"], group=group)
    assert run_prepare(run_id=run.pk, worker="w1") is None
    run.refresh_from_db()
    assert (run.status, run.error_code) == ("failed", "not_found") and run.finished_at is not None
    assert not ChatSession.objects.exists()


@pytest.mark.parametrize(
    ("status", "error_code", "expected"),
    [
        ("done", "", ("succeeded", "", "the answer")),
        ("cancelled", "", ("cancelled", "cancelled", "the answer")),
        ("failed", "cancelled", ("cancelled", "cancelled", "the answer")),
        ("failed", "deadline_exceeded", ("timed_out", "deadline_exceeded", "the answer")),
        ("failed", "approval_timed_out", ("timed_out", "approval_timed_out", "the answer")),
        ("failed", "step_limit", ("failed", "step_limit", "the answer")),
        ("failed", "", ("failed", "failed", "the answer")),
    ],
)
def test_turn_outcome_maps_the_last_answer_onto_a_run_status(
    user, agent, status, error_code, expected
):
    prepared = _prepared(user, agent)
    Message.objects.filter(pk=prepared.assistant_message_id).update(
        status=status, error_code=error_code, content="the answer"
    )
    assert turn_outcome(session_id=prepared.session_id) == expected
    Message.objects.filter(session_id=prepared.session_id, role=MessageRole.ASSISTANT).delete()
    assert turn_outcome(session_id=prepared.session_id) == ("failed", "no_answer", "")


def test_approval_state_parks_the_run_while_an_approval_is_open(user, agent):
    prepared = _prepared(user, agent)
    assert approval_state(run_id=prepared.run_id, worker="w1", session_id=prepared.session_id) == (
        "running",
        None,
    )
    approval, _ = approval_open(
        session_id=prepared.session_id,
        message_id=prepared.assistant_message_id,
        tool_call_id="call-1",
        tool_name="mesh_terminal",
        node_id="box",
        arguments={"command": "rm -rf /tmp/x"},
        reason="outside the rules",
        timeout=60,
    )
    status, info = approval_state(
        run_id=prepared.run_id, worker="w2", session_id=prepared.session_id
    )
    assert status == "awaiting_approval"
    assert AgentRun.objects.get(pk=prepared.run_id).status == "running"  # not this worker's
    status, info = approval_state(
        run_id=prepared.run_id, worker="w1", session_id=prepared.session_id
    )
    assert AgentRun.objects.get(pk=prepared.run_id).status == "awaiting_approval"
    assert info == {
        "approval_id": approval.pk,
        "tool": "mesh_terminal",
        "node_id": "box",
        "arguments": {"command": "rm -rf /tmp/x"},
        "expires_at": approval.expires_at.isoformat(),
    }
    approval_decide(actor=user, approval=approval, approve=False)
    assert approval_state(run_id=prepared.run_id, worker="w1", session_id=prepared.session_id) == (
        "running",
        None,
    )
    assert AgentRun.objects.get(pk=prepared.run_id).status == "running"


def test_run_finish_ends_only_this_workers_active_run_once(user, agent):
    run = _claimed(user, agent)
    assert run_finish(run_id=run.pk, worker="w2", status="succeeded") is False
    assert run_finish(run_id=run.pk, worker="w1", status="failed", code="x", text="y" * 3000)
    run.refresh_from_db()
    assert (run.status, run.error_code, len(run.error)) == ("failed", "x", 2000)
    assert run.finished_at is not None
    assert run_finish(run_id=run.pk, worker="w1", status="succeeded") is False
    run.refresh_from_db()
    assert run.status == "failed"


def test_evaluation_store_appends_scores_and_counts_reworks(user, agent):
    run = _claimed(user, agent)
    evaluation_store(run_id=run.pk, score=40, feedback="Too vague.", rework=True)
    evaluation_store(run_id=run.pk, score=90, feedback="Good.", rework=False)
    run.refresh_from_db()
    assert run.evaluations == [
        {"score": 40, "feedback": "Too vague."},
        {"score": 90, "feedback": "Good."},
    ]
    assert (run.score, run.feedback, run.reworks) == (90, "Good.", 1)


def test_rework_post_asks_the_agent_again_with_the_feedback(user, agent):
    prepared = _prepared(user, agent)
    with pytest.raises(TurnInProgress):  # the first answer is still being written
        rework_post(prepared=prepared, score=40, feedback="Name the mount point.")
    Message.objects.filter(pk=prepared.assistant_message_id).update(status="done", content="ok")
    assistant_id = rework_post(prepared=prepared, score=40, feedback="Name the mount point.")
    assert assistant_id != prepared.assistant_message_id
    users = Message.objects.filter(session_id=prepared.session_id, role=MessageRole.USER)
    last = users.order_by("-id").first()
    assert last is not None
    assert "scored this result 40/100" in last.content
    assert "Feedback: Name the mount point." in last.content
    new = Message.objects.get(pk=assistant_id)
    assert (new.role, new.session_id) == (MessageRole.ASSISTANT, prepared.session_id)


def test_evaluation_request_uses_the_owners_llm_and_holds_rubric_task_and_result(
    user, agent, llm_server
):
    configure_llm(user, llm_server)
    prepared = _prepared(user, agent)
    llm, messages = evaluation_request(prepared=prepared, result="42 GB free on /")
    assert (llm.provider, llm.model) == ("openai_compatible", "test-model")
    assert llm.base_url == llm_server.url + "/v1"
    assert messages == [
        {
            "role": "user",
            "content": "Rubric:\nMentions free space.\n\nTask:\nCheck the disk.\n\n"
            "Result to score:\n42 GB free on /",
        }
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('{"score": 80, "feedback": "ok"}', (80, "ok")),
        ('Sure!\n```json\n{"score": "75"}\n```', (75, "")),
        ('{"score": 0, "feedback": 5}', (0, "5")),
        ('{"score": 100, "feedback": "' + "f" * 5000 + '"}', (100, "f" * 4000)),
        ('{"score": 101}', None),
        ('{"score": -1}', None),
        ('{"feedback": "no score"}', None),
        ('{"score": "high"}', None),
        ('{"score": null}', None),
        ("[80]", None),
        ("no json at all", None),
        ("", None),
        ("{not json}", None),
    ],
)
def test_evaluation_parse_reads_only_a_well_formed_score(text, expected):
    assert evaluation_parse(text) == expected
