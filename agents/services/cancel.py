"""Cancelling a run: a waiting or parked one ends at once; a running one stops its turn.

A `running` run is driven by some hub process's event loop; this process cannot stop it
directly. The cancel is a database fact instead: the run's `cancel_requested_at`, and the
chat's own cancel (`sessions_app` `turn_cancel`, which the turn's watcher sees within a poll,
in whichever process runs it, and which cancels the turn's tasks on nodes with TaskCancel).
The driving process then ends the run `cancelled` (see `execution.run_finish`).
"""

from __future__ import annotations

import logging

from django.db import transaction
from django.utils import timezone

from accounts.context import DEFAULT_CONTEXT, AuditContext
from accounts.models import User
from accounts.services import audit_record
from agents.models import AgentRun, RunStatus
from agents.models.runs import UNFINISHED
from agents.services.notify import run_notify_on_commit
from cortex import errors

logger = logging.getLogger("cortex.agents")


class RunFinished(errors.Conflict):
    code = "run_finished"
    default_message = "The run has already finished."


def session_turn_cancel(*, run: AgentRun) -> bool:
    """Ask the run's chat turn to stop through the chat's own cancel; False if none runs."""
    from sessions_app import services as chat
    from sessions_app.models import ChatSession

    if run.session_id is None:
        return False
    session = ChatSession.objects.select_related("owner").get(pk=run.session_id)
    try:
        chat.turn_cancel(actor=session.owner, session=session)
    except chat.NoTurnRunning:
        return False
    return True


def run_cancel(
    *, actor: User, run: AgentRun, audit_context: AuditContext = DEFAULT_CONTEXT
) -> AgentRun:
    """Cancel the run. `scheduled` and `awaiting_approval` end `cancelled` at once; `running`
    is asked to stop and ends `cancelled` when its turn has stopped. RunFinished otherwise."""
    now = timezone.now()
    with transaction.atomic():
        locked = AgentRun.objects.select_for_update().select_related("agent").get(pk=run.pk)
        if locked.status not in UNFINISHED:
            raise RunFinished()
        was = locked.status
        locked.cancel_requested_at = locked.cancel_requested_at or now
        fields = ["cancel_requested_at"]
        if was in (RunStatus.SCHEDULED, RunStatus.AWAITING_APPROVAL):
            locked.status = RunStatus.CANCELLED
            locked.error_code = "cancelled"
            locked.error = "The owner cancelled the run."
            locked.finished_at = now
            fields += ["status", "error_code", "error", "finished_at"]
        locked.save(update_fields=fields)
        audit_record(
            actor=actor,
            action="agents.run.cancel",
            target_type="agent_run",
            target_id=locked.pk,
            audit_context=audit_context,
            details={"agent_id": locked.agent_id, "run_id": locked.pk, "status": was},
        )
        if was != RunStatus.SCHEDULED:
            session_turn_cancel(run=locked)
        if locked.status == RunStatus.CANCELLED:
            run_notify_on_commit(
                owner_id=locked.agent.owner_id,
                agent_id=locked.agent_id,
                run_id=locked.pk,
                status=locked.status,
                session_id=locked.session_id,
            )
    return locked
