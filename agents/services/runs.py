"""Runs in the database: fire due ticks, claim runs, beat, end lost ones, start by hand.

Exactly once, across any number of hub processes: a tick fires by inserting its
`AgentRun(agent, scheduled_for)` row; the unique constraint lets only one insert win (the
loser's IntegrityError means someone else fired it). Agents due and runs waiting are taken
with `select_for_update(skip_locked=True)` so processes do not queue behind each other
(SQLite ignores the lock; its single writer and the constraint keep the promise there).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, transaction
from django.utils import timezone

from accounts.context import DEFAULT_CONTEXT, AuditContext
from accounts.models import User
from accounts.services import audit_record
from agents.models import Agent, AgentRun, CatchUp, RunStatus, RunTrigger, WebhookDelivery
from agents.models.runs import ACTIVE, UNFINISHED
from agents.services import timing
from cortex import errors

logger = logging.getLogger("cortex.agents")

#: Most due agents fired, and most waiting runs claimed, per scheduler pass (a full batch
#: makes the scheduler pass again at once).
BATCH = 500


class AgentPaused(errors.Conflict):
    code = "agent_paused"
    default_message = "The agent is paused; resume it first."


class RunTooSoon(errors.Throttled):
    code = "run_too_soon"
    default_message = "The agent ran too recently; wait for the minimum interval."


class WebhookBodyTooLarge(errors.ValidationFailed):
    code = "webhook_body_too_large"
    http_status = 413
    default_message = "The webhook body is too large to hand to a run."


#: Largest webhook body a run is started with (it becomes the run's context).
MAX_WEBHOOK_BODY = 64 * 1024


class InvalidSignature(errors.NotAuthenticated):
    code = "invalid_signature"
    default_message = "The signature is missing or wrong."


class StaleSignature(errors.NotAuthenticated):
    code = "stale_signature"
    default_message = "The request's X-Cortex-Timestamp is outside the accepted window."


class ReplayedDelivery(errors.Conflict):
    code = "replayed_delivery"
    default_message = "This signed request was delivered already; sign a new one."


#: A webhook timestamp: Unix seconds, ASCII digits only (no sign, space, fraction or `_`).
_TIMESTAMP = re.compile(r"[0-9]{1,12}")


@dataclass(frozen=True)
class Fired:
    run_id: int  # 0: not read back (bulk insert)
    agent_id: int
    scheduled_for: datetime
    status: str


def _locked(queryset: Any) -> Any:
    return queryset.select_for_update(skip_locked=True, of=("self",))


def _fire_one(agent: Agent, now: datetime, busy: bool) -> AgentRun | None:
    """Move `next_fire_at` past now (on the instance) and make this tick's run, if any."""
    if agent.next_fire_at is None:  # paused or manual-only: nothing is due
        return None
    ticks, upcoming = timing.due_ticks(
        kind=agent.trigger_kind,
        first=agent.next_fire_at,
        now=now,
        interval=agent.interval_seconds,
        cron=agent.cron_expression,
        tz=agent.timezone,
    )
    latest = ticks[-1]
    late = (now - latest).total_seconds() > settings.AGENT_LATE_GRACE_S
    agent.next_fire_at = upcoming
    if late and agent.catch_up == CatchUp.SKIP:
        logger.info("agent %s: %s missed tick(s) skipped", agent.pk, len(ticks))
        return None
    return AgentRun(
        agent=agent,
        trigger=RunTrigger.CATCH_UP if late else RunTrigger.SCHEDULE,
        scheduled_for=latest,
        status=RunStatus.SKIPPED if busy else RunStatus.SCHEDULED,
        error_code="previous_run_unfinished" if busy else "",
        finished_at=now if busy else None,
    )


def ticks_fire(*, now: datetime | None = None) -> list[Fired]:
    """Fire due ticks of up to BATCH unpaused agents (one run row per tick, at most once).

    One transaction, a constant number of statements: lock the due agents (skipping those
    another process holds), move their `next_fire_at`, insert the runs. A conflicting insert
    (the tick already has its row) is dropped by the unique constraint and not reported.
    """
    now = now or timezone.now()
    due = Agent.objects.filter(paused=False, next_fire_at__lte=now).order_by("next_fire_at")
    with transaction.atomic():
        agents = list(_locked(due)[:BATCH])
        if not agents:
            return []
        busy = set(
            AgentRun.objects.filter(
                agent_id__in=[a.pk for a in agents], status__in=UNFINISHED
            ).values_list("agent_id", flat=True)
        )
        runs = [r for a in agents if (r := _fire_one(a, now, a.pk in busy)) is not None]
        Agent.objects.bulk_update(agents, ["next_fire_at"])
        # A tick whose row exists was fired already (by a process that held the agent before
        # this one read it); the unique constraint refuses it anyway, this only reports right.
        existing = set(
            AgentRun.objects.filter(
                agent_id__in={r.agent_id for r in runs},
                scheduled_for__in={r.scheduled_for for r in runs},
            ).values_list("agent_id", "scheduled_for")
        )
        runs = [r for r in runs if (r.agent_id, r.scheduled_for) not in existing]
        AgentRun.objects.bulk_create(runs, ignore_conflicts=True)
    return [Fired(0, r.agent_id, r.scheduled_for, r.status) for r in runs]


def next_due_in(*, now: datetime | None = None) -> float | None:
    """Seconds until the earliest unpaused agent's next tick (0 if due); None if none."""
    now = now or timezone.now()
    first = (
        Agent.objects.filter(paused=False, next_fire_at__isnull=False)
        .order_by("next_fire_at")
        .values_list("next_fire_at", flat=True)
        .first()
    )
    return None if first is None else max(0.0, (first - now).total_seconds())


def runs_claim(*, worker: str, limit: int = BATCH) -> list[int]:
    """Take waiting runs for this process: `running`, claimed by `worker`, beating from now."""
    now = timezone.now()
    with transaction.atomic():
        waiting = _locked(
            AgentRun.objects.filter(status=RunStatus.SCHEDULED).order_by("scheduled_for", "id")
        )
        ids = list(waiting.values_list("id", flat=True)[:limit])
        AgentRun.objects.filter(pk__in=ids, status=RunStatus.SCHEDULED).update(
            status=RunStatus.RUNNING, claimed_by=worker, heartbeat_at=now, started_at=now
        )
    return ids


def runs_beat(*, worker: str, run_ids: list[int]) -> None:
    """One statement for every run this process is driving."""
    if run_ids:
        AgentRun.objects.filter(pk__in=run_ids, claimed_by=worker, status__in=ACTIVE).update(
            heartbeat_at=timezone.now()
        )


def runs_reap_lost(*, now: datetime | None = None) -> list[AgentRun]:
    """End runs whose process stopped beating: `lost`. Returns them (for notifications)."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=settings.AGENT_LOST_AFTER_S)
    lost: list[AgentRun] = []
    with transaction.atomic():
        stale = _locked(
            AgentRun.objects.filter(status__in=ACTIVE, heartbeat_at__lt=cutoff).select_related(
                "agent"
            )
        )
        for run in stale[:BATCH]:
            run.finished_at = now
            if run.cancel_requested_at is not None:  # it was stopping anyway: say so
                run.status, run.error_code = RunStatus.CANCELLED, "cancelled"
                run.error = "The owner cancelled the run."
            else:
                run.status, run.error_code = RunStatus.LOST, "lost"
                run.error = "The hub process running this agent stopped."
            run.save(update_fields=["status", "finished_at", "error_code", "error"])
            lost.append(run)
    return lost


def _began_work(run: AgentRun) -> bool:
    """Whether the run's chat has called a tool (or started a task): re-running it from the
    start could repeat what it did, so a stopping process must not release it."""
    from mesh.models import Task
    from sessions_app.models import Message, MessageRole

    if run.session_id is None:
        return False
    return (
        Message.objects.filter(session_id=run.session_id, role=MessageRole.TOOL).exists()
        or Task.objects.filter(chat_session_id=run.session_id).exists()
    )


def runs_hand_over(*, worker: str) -> list[AgentRun]:
    """A process that stops cleanly gives up its runs at once: a run that has not called a
    tool yet goes back to `scheduled` (another process claims it and starts it afresh); one
    that has is ended `failed` (`hub_stopped`), as a re-run could repeat its work; one its
    owner was cancelling ends `cancelled`. Returns the runs (for notifications)."""
    now = timezone.now()
    handed: list[AgentRun] = []
    with transaction.atomic():
        mine = _locked(
            AgentRun.objects.filter(claimed_by=worker, status__in=ACTIVE).select_related("agent")
        )
        for run in mine:
            fields = ["status", "claimed_by", "heartbeat_at", "error_code", "error"]
            run.claimed_by, run.heartbeat_at = "", None
            if run.cancel_requested_at is not None:
                run.status, run.error_code = RunStatus.CANCELLED, "cancelled"
                run.error = "The owner cancelled the run."
                run.finished_at = now
                fields.append("finished_at")
            elif _began_work(run):
                run.status, run.error_code = RunStatus.FAILED, "hub_stopped"
                run.error = (
                    "The hub process running this agent stopped after the run had called "
                    "tools; it was not restarted, so nothing runs twice."
                )
                run.finished_at = now
                fields.append("finished_at")
            else:
                run.status, run.error_code = RunStatus.SCHEDULED, ""
                run.error = ""
                run.started_at, run.session = None, None
                fields += ["started_at", "session"]
            run.save(update_fields=fields)
            handed.append(run)
    return handed


def _check_may_start(agent: Agent, now: datetime) -> None:
    if agent.paused:
        raise AgentPaused()
    recent = now - timedelta(seconds=timing.min_interval())
    if (
        AgentRun.objects.filter(
            agent=agent, started_at__gt=recent, status__in=[*UNFINISHED, *_FINISHED_RAN]
        ).exists()
        or AgentRun.objects.filter(agent=agent, status=RunStatus.SCHEDULED).exists()
    ):
        raise RunTooSoon()


_FINISHED_RAN = (
    RunStatus.SUCCEEDED,
    RunStatus.FAILED,
    RunStatus.TIMED_OUT,
    RunStatus.CANCELLED,
    RunStatus.LOST,
)


def run_now(
    *,
    actor: User,
    agent: Agent,
    trigger: str = RunTrigger.MANUAL,
    context: str = "",
    audit_context: AuditContext = DEFAULT_CONTEXT,
) -> AgentRun:
    """A run outside the schedule (run now, webhook); waits for a scheduler to claim it."""
    now = timezone.now()
    with transaction.atomic():
        agent = Agent.objects.select_for_update().get(pk=agent.pk)
        _check_may_start(agent, now)
        run = AgentRun(agent=agent, trigger=trigger, scheduled_for=now, context=context)
        run.full_clean(exclude=["agent", "session"])
        run.save()
        audit_record(
            actor=actor,
            action=f"agents.run.{trigger}",
            target_type="agent_run",
            target_id=run.pk,
            audit_context=audit_context,
            details={"agent_id": agent.pk, "run_id": run.pk, "context_bytes": len(context)},
        )
    return run


def signature_of(*, secret: str, body: bytes, timestamp: str = "") -> str:
    """`sha256=<hex HMAC-SHA256>` keyed with the agent's secret, of the raw body (the
    documented form) or, with a timestamp, of `"<timestamp>.<body>"`."""
    signed = timestamp.encode() + b"." + body if timestamp else body
    return "sha256=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def _refuse(agent: Agent, reason: str, body: bytes, audit_context: AuditContext) -> None:
    audit_record(
        actor=None,
        action="agents.webhook.refused",
        target_type="agent",
        target_id=agent.pk,
        audit_context=audit_context.via("webhook"),
        details={"agent_id": agent.pk, "reason": reason, "body_bytes": len(body)},
    )


def _delivery_remember(*, agent: Agent, signature: str, now: datetime) -> bool:
    """Insert the delivery's row; False when the same signed request was seen already."""
    digest = hashlib.sha256(signature.encode()).hexdigest()
    try:
        with transaction.atomic():
            WebhookDelivery.objects.create(agent=agent, digest=digest, received_at=now)
    except IntegrityError:
        return False
    return True


def webhook_deliveries_sweep(*, now: datetime | None = None) -> int:
    """Forget deliveries older than twice the window (requests that old are stale anyway)."""
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=2 * settings.AGENT_WEBHOOK_WINDOW_S)
    deleted, _ = WebhookDelivery.objects.filter(received_at__lt=cutoff).delete()
    return deleted


def webhook_trigger(
    *,
    agent_id: Any,
    body: bytes,
    signature: str,
    timestamp: str = "",
    audit_context: AuditContext = DEFAULT_CONTEXT,
) -> AgentRun:
    """A signed webhook: HMAC-SHA256 of the raw body with the agent's own secret, or, when the
    caller sends `X-Cortex-Timestamp`, of `"<timestamp>.<raw body>"`.

    An unknown agent, a malformed timestamp and a wrong signature answer alike
    (InvalidSignature), so ids cannot be probed; a timestamped signature that holds but is more
    than `CORTEX_AGENT_WEBHOOK_WINDOW_S` off is StaleSignature. Every accepted signature is
    remembered for the window, so the same signed request delivered again is ReplayedDelivery
    and a captured request never starts a second run (a caller that repeats a body on purpose
    signs it with a fresh timestamp). Refusals on a real agent are audited. The body becomes the
    run's context.
    """
    from preferences import crypto

    pk = _int_or_none(agent_id)
    agent = None if pk is None else Agent.objects.select_related("owner").filter(pk=pk).first()
    if agent is None:
        raise InvalidSignature()
    try:
        secret = crypto.decrypt(agent.webhook_secret)
    except errors.CortexError:
        secret = ""
    timestamp = timestamp or ""
    malformed = bool(timestamp) and not _TIMESTAMP.fullmatch(timestamp)
    expected = signature_of(secret=secret, body=body, timestamp=timestamp) if secret else ""
    if (
        not expected
        or malformed
        or not hmac.compare_digest(expected.encode(), signature.strip().encode())
    ):
        _refuse(agent, "bad_signature", body, audit_context)
        raise InvalidSignature()
    now = timezone.now()
    if timestamp and abs(now.timestamp() - int(timestamp)) > settings.AGENT_WEBHOOK_WINDOW_S:
        _refuse(agent, "stale_signature", body, audit_context)
        raise StaleSignature()
    if not _delivery_remember(agent=agent, signature=expected, now=now):
        _refuse(agent, "replayed_delivery", body, audit_context)
        raise ReplayedDelivery()
    if len(body) > MAX_WEBHOOK_BODY:
        raise WebhookBodyTooLarge(f"At most {MAX_WEBHOOK_BODY} bytes.")
    context = body.decode("utf-8", errors="replace")
    return run_now(
        actor=agent.owner,
        agent=agent,
        trigger=RunTrigger.WEBHOOK,
        context=context,
        audit_context=audit_context,
    )


def _int_or_none(value: Any) -> int | None:
    try:
        number = int(str(value))
    except (TypeError, ValueError):
        return None
    return number if 0 < number < 2**63 else None
