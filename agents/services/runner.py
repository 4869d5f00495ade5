"""Drive one claimed run on this process's event loop: its chat turn, Co-Worker, the end.

The turn is the chat's own (`sessions_app.services.turn_runner.turn_run`) with the agent's
limits as its budget. While it runs, open approvals park the run `awaiting_approval` and the
owner is told; an approval nobody answers before the agent's deadline ends it `timed_out`.
"""

from __future__ import annotations

import asyncio
import logging
import time

from agents.models import RunStatus
from agents.services import execution
from agents.services.notify import run_notify
from cortex.services import db_unit_long as db
from sessions_app.services.conf import TurnBudget

logger = logging.getLogger("cortex.agents")

#: Seconds between looks at the run's approvals.
APPROVAL_POLL = 0.5


async def run_drive(*, run_id: int, worker: str) -> None:
    """Never raises; whatever happens ends up on the run row."""
    try:
        prepared = await db(execution.run_prepare)(run_id=run_id, worker=worker)
    except Exception:
        logger.exception("agent run %s could not start", run_id)
        await db(execution.run_finish)(
            run_id=run_id,
            worker=worker,
            status=RunStatus.FAILED,
            code="internal_error",
            text="The run could not start.",
        )
        return
    if prepared is None:
        return
    await run_notify(
        owner_id=prepared.owner_id,
        agent_id=prepared.agent_id,
        run_id=run_id,
        status=RunStatus.RUNNING,
        session_id=prepared.session_id,
    )
    try:
        status, code, text = await _work(prepared, worker)
    except asyncio.CancelledError:
        raise  # the process is stopping: the run ends `lost` when its beat stops
    except Exception:
        logger.exception("agent run %s failed", run_id)
        status, code, text = RunStatus.FAILED, "internal_error", "The run failed unexpectedly."
    if await db(execution.run_finish)(
        run_id=run_id, worker=worker, status=status, code=code, text=text
    ):
        await run_notify(
            owner_id=prepared.owner_id,
            agent_id=prepared.agent_id,
            run_id=run_id,
            status=status,
            session_id=prepared.session_id,
        )


async def _work(prepared: execution.Prepared, worker: str) -> tuple[str, str, str]:
    from sessions_app.services.conf import TurnBudget

    ends_at = time.monotonic() + prepared.max_runtime_s
    message_id = prepared.assistant_message_id
    reworks = 0
    while True:
        budget = TurnBudget(
            max_steps=prepared.max_steps,
            deadline=max(1.0, ends_at - time.monotonic()),
            max_tokens=prepared.max_tokens,
            approval_timeout=float(prepared.approval_timeout_s),
            end_on_approval_timeout=True,
        )
        await _turn(prepared, worker, message_id, budget)
        status, code, text = await db(execution.turn_outcome)(session_id=prepared.session_id)
        if await db(execution.run_cancel_requested)(run_id=prepared.run_id):
            return RunStatus.CANCELLED, "cancelled", ""
        if status != RunStatus.SUCCEEDED or not prepared.rubric:
            return status, code, ""
        verdict = await _evaluate(prepared, text)
        if verdict is None:
            return RunStatus.SUCCEEDED, "", ""
        score, feedback = verdict
        rework = score < prepared.rework_threshold and reworks < prepared.max_reworks
        await db(execution.evaluation_store)(
            run_id=prepared.run_id, score=score, feedback=feedback, rework=rework
        )
        if not rework:
            return RunStatus.SUCCEEDED, "", ""
        reworks += 1
        message_id = await db(execution.rework_post)(
            prepared=prepared, score=score, feedback=feedback
        )


async def _turn(
    prepared: execution.Prepared, worker: str, message_id: int, budget: TurnBudget
) -> None:
    from sessions_app.services.turn_runner import turn_run

    turn = asyncio.create_task(turn_run(assistant_message_id=message_id, budget=budget))
    last: str = RunStatus.RUNNING
    while not turn.done():
        await asyncio.wait({turn}, timeout=APPROVAL_POLL)
        try:
            status, approval = await db(execution.approval_state)(
                run_id=prepared.run_id, worker=worker, session_id=prepared.session_id
            )
        except Exception:
            logger.warning("approval check of run %s failed", prepared.run_id)
            continue
        if status != last:
            last = status
            await run_notify(
                owner_id=prepared.owner_id,
                agent_id=prepared.agent_id,
                run_id=prepared.run_id,
                status=status,
                session_id=prepared.session_id,
                approval=approval,
            )
    await turn


async def _evaluate(prepared: execution.Prepared, result: str) -> tuple[int, str] | None:
    """The Co-Worker: a separate model call scores the result against the rubric."""
    from providers.llm import LLMError
    from providers.registry import registry

    try:
        llm, messages = await db(execution.evaluation_request)(prepared=prepared, result=result)
        client = registry.chat_client(llm)
        parts: list[str] = []
        async for chunk in client.stream(system=execution.EVAL_SYSTEM, messages=messages, tools=[]):
            parts.append(chunk.text or "")
    except LLMError:
        logger.warning("evaluation of run %s failed", prepared.run_id)
        return None
    return execution.evaluation_parse("".join(parts))
