"""`runs_hand_over`, the database half of a clean stop (the two-process test drives it whole):
only this process's active runs move; untouched work is released, begun work is ended."""

from __future__ import annotations

import pytest

from agents import services
from agents.models import AgentRun
from agents.services.runs import runs_hand_over
from agents.tests.test_runs import _agent, exec_tool  # noqa: F401  # fixture
from sessions_app.models import Message

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("exec_tool")]


def _claimed(user, nodes, name: str, worker: str) -> AgentRun:  # type: ignore[no-untyped-def]
    from sessions_app import services as chat

    agent, _ = services.agent_create(
        actor=user, name=name, prompt="p", node_ids=[], trigger={"kind": "manual"}
    )
    run = services.run_now(actor=user, agent=agent)
    assert services.runs_claim(worker=worker) == [run.pk]
    session = chat.session_create(actor=user, title=name)
    AgentRun.objects.filter(pk=run.pk).update(session=session)
    run.refresh_from_db()
    return run


def test_only_this_process_runs_are_handed_over(user, nodes, agent_settings):
    untouched = _claimed(user, nodes, "untouched", "w1")
    began = _claimed(user, nodes, "began", "w1")
    assert began.session is not None
    Message.objects.create(session=began.session, role="tool", content="ran", status="done")
    cancelling = _claimed(user, nodes, "cancelling", "w1")
    services.run_cancel(actor=user, run=cancelling)
    other = _claimed(user, nodes, "other", "w2")

    handed = {run.pk: run.status for run in runs_hand_over(worker="w1")}
    assert handed == {
        untouched.pk: "scheduled",
        began.pk: "failed",
        cancelling.pk: "cancelled",
    }
    for run in (untouched, began, cancelling, other):
        run.refresh_from_db()
    assert (untouched.claimed_by, untouched.session_id, untouched.started_at) == ("", None, None)
    assert (began.error_code, began.finished_at is not None) == ("hub_stopped", True)
    assert (other.status, other.claimed_by) == ("running", "w2")
    assert services.runs_claim(worker="w2") == [untouched.pk]  # another process takes it
    assert runs_hand_over(worker="w1") == []
