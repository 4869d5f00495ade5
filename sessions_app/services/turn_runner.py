"""The chat turn: stream the model, run its tool calls (asking first when needed), repeat.

Runs as an asyncio task in the web process. Every step is stored before it is announced; a
watcher beats the heartbeat (so another process can tell a dead runner from a slow one),
and stops the work on cancel or at the deadline. Ends on a final answer, the step limit, the
deadline, a cancel, or an error; the current assistant message then says which.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, ParamSpec, TypeVar

from cortex import metrics
from cortex.services import db_unit_long as db
from providers.llm import LLMClient, LLMError
from providers.registry import registry
from sessions_app.services import approvals, turn_prompt, turn_steps
from sessions_app.services.conf import TurnBudget, turn_limits
from sessions_app.services.events import frame_broadcast
from sessions_app.services.turn_state import PreparedCall, TurnState

logger = logging.getLogger("cortex.sessions")
P = ParamSpec("P")
R = TypeVar("R")


async def _emit(state: TurnState, frames: list[dict[str, Any]]) -> None:
    for frame in frames:
        await frame_broadcast(session_id=state.session_id, frame=frame)


class _ApprovalTimedOut(Exception):
    """Nobody answered in time and the turn's budget says that ends it."""


async def turn_run(*, assistant_message_id: int, budget: TurnBudget | None = None) -> None:
    """Drive one turn to its end; never raises (failures end up on the message)."""
    try:
        state, _ = await db(turn_steps.turn_begin)(message_id=assistant_message_id, budget=budget)
    except Exception:
        logger.exception("turn %s could not start", assistant_message_id)
        return
    if state is None:
        return
    work = asyncio.create_task(_turn_loop(state), name=f"turn-{assistant_message_id}")
    watcher = asyncio.create_task(_watch(state, work))
    provider = str(getattr(state.llm, "provider", "") or "unknown")
    outcome = "completed"
    try:
        await work
    except asyncio.CancelledError:
        outcome = state.stop_reason or "interrupted"
        if state.stop_reason == "cancelled":
            await _end(state, "cancelled", "The user cancelled the answer.", "cancelled")
        elif state.stop_reason == "deadline":
            await _end(state, "deadline_exceeded", "The answer took too long and was stopped.")
        else:  # the process is shutting down; the stale sweep covers a failure to write this
            state.stop_reason = "interrupted"
            await asyncio.shield(_end(state, "interrupted", "The hub stopped during the answer."))
            raise
    except LLMError as exc:
        outcome = "provider_error"
        metrics.PROVIDER_ERRORS.labels(provider=provider, code=exc.code).inc()
        await _end(state, exc.code, exc.message)
    except _ApprovalTimedOut:
        state.stop_reason = "approval_timed_out"
        await _end(state, "approval_timed_out", "Nobody approved a tool call in time.")
    except Exception:
        outcome = "failed"
        logger.exception("turn of message %s failed", assistant_message_id)
        await _end(state, "internal_error", "The answer failed unexpectedly.")
    finally:
        watcher.cancel()
        metrics.CHAT_TURNS.labels(provider=provider, outcome=outcome).inc()


async def _end(state: TurnState, code: str, text: str, status: str = "failed") -> None:
    try:
        await db(turn_steps.turn_fail)(state=state, code=code, text=text, status=status)
    except Exception:
        logger.exception("could not record the end of turn %s", state.turn_id)


async def _watch(state: TurnState, work: asyncio.Task[None]) -> None:
    """Heartbeat, cancel requests and the deadline, checked every poll interval."""
    limits = turn_limits()
    last_beat = time.monotonic()
    while not work.done():
        await asyncio.sleep(limits.poll)
        now = time.monotonic()
        if now >= state.deadline:
            state.stop_reason = "deadline"
            work.cancel()
            return
        beat = now - last_beat >= limits.heartbeat
        if beat:
            last_beat = now
        try:
            cancelled = await db(turn_steps.turn_heartbeat)(state=state, beat=beat)
        except Exception:
            logger.warning("heartbeat of turn %s failed", state.turn_id)
            continue
        if cancelled:
            state.stop_reason = "cancelled"
            work.cancel()
            return


async def _turn_loop(state: TurnState) -> None:
    limits = turn_limits()
    max_steps = state.max_steps or limits.max_steps
    client = registry.chat_client(state.llm)
    for step in range(max_steps):
        if step:
            await _emit(state, await db(turn_steps.step_next)(state=state))
        tools = await db(turn_prompt.tool_specs)(state=state)
        system, history = await db(turn_prompt.turn_context)(state=state)
        calls = await _model_step(state, client, system, history, tools)
        if not calls:
            return
        if state.max_tokens and state.tokens_used > state.max_tokens:
            await _end(
                state,
                "token_limit",
                f"The answer used more than {state.max_tokens} tokens and was stopped.",
            )
            return
        for call in calls:
            await _tool_call(state, call)
    await _emit(state, await db(turn_steps.step_next)(state=state))
    await _end(
        state,
        "step_limit",
        f"The answer needed more than {max_steps} model steps and was stopped.",
    )


async def _model_step(
    state: TurnState,
    client: LLMClient,
    system: str,
    history: list[dict[str, Any]],
    tools: list[dict[str, Any]],
) -> list[dict[str, Any]]:
    """Stream one completion; deltas are stored and sent in small batches."""
    interval = turn_limits().delta_interval
    started = time.monotonic()
    text: list[str] = []
    pending: list[str] = []
    calls = []
    tokens_in = tokens_out = 0
    last_flush = time.monotonic()

    async def flush() -> None:
        nonlocal last_flush
        if pending:
            delta = "".join(pending)
            pending.clear()
            frames = await db(turn_steps.delta_store)(
                state=state, content="".join(text), delta=delta
            )
            await _emit(state, frames)
        last_flush = time.monotonic()

    async for chunk in client.stream(system=system, messages=history, tools=tools):
        if chunk.text:
            text.append(chunk.text)
            pending.append(chunk.text)
            if time.monotonic() - last_flush >= interval:
                await flush()
        if chunk.tool_call is not None:
            calls.append(chunk.tool_call)
        if chunk.tokens_in is not None:
            tokens_in = chunk.tokens_in
        if chunk.tokens_out is not None:
            tokens_out = chunk.tokens_out
    await flush()
    state.tokens_used += tokens_in + tokens_out
    stored, frames = await db(turn_steps.assistant_record)(
        state=state,
        content="".join(text),
        calls=calls,
        tokens_in=tokens_in,
        tokens_out=tokens_out,
        latency_ms=int((time.monotonic() - started) * 1000),
    )
    await _emit(state, frames)
    return stored


async def _tool_call(state: TurnState, call: dict[str, Any]) -> None:
    from tools.base import ToolResult

    prepared, frames = await db(turn_steps.tool_call_prepare)(state=state, call=call)
    await _emit(state, frames)
    if prepared.result is None and prepared.needs_approval:
        decision = await _approval(state, prepared)
        if decision == "approved":
            prepared.approved = True
        elif decision == "denied":
            prepared.result = ToolResult.error("approval_denied", "The user denied this call.")
        elif state.end_on_approval_timeout:
            raise _ApprovalTimedOut()
        else:
            prepared.result = ToolResult.error(
                "approval_timed_out", "Nobody approved this call in time, so it did not run."
            )
    result = prepared.result
    if result is None:
        result = await db(turn_steps.tool_execute)(state=state, prepared=prepared)
    await _emit(
        state, await db(turn_steps.tool_result_store)(state=state, prepared=prepared, result=result)
    )


async def _approval(state: TurnState, prepared: PreparedCall) -> str:
    """Ask, then wait on the database state (short polling works across processes)."""
    limits = turn_limits()
    approval, frame = await db(approvals.approval_open)(
        session_id=state.session_id,
        message_id=state.message_id,
        tool_call_id=prepared.call_id,
        tool_name=prepared.name,
        node_id=prepared.node_id,
        arguments=prepared.arguments or {},
        reason=prepared.reason,
        timeout=state.approval_timeout or limits.approval_timeout,
    )
    await _emit(state, [frame])
    while True:
        status = await db(approvals.approval_poll)(approval_id=approval.pk)
        if status != "pending":
            return status
        await asyncio.sleep(limits.poll)
