"""The turn's database steps (sync); the async runner calls each as one unit of work.

Every step commits what it did and returns the frames to broadcast, so a frame is never
announced before the row it describes exists.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from typing import TYPE_CHECKING, Any

from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from accounts.context import CHAT_CONTEXT
from cortex import errors
from providers.llm import ToolCallDelta
from sessions_app.events import FrameType
from sessions_app.models import ChatSession, Message, MessageRole, MessageStatus, SessionNode
from sessions_app.services.conf import TurnBudget, turn_limits
from sessions_app.services.events import event_append
from sessions_app.services.llm_config import llm_settings_for
from sessions_app.services.sessions import UNFINISHED, message_fail
from sessions_app.services.turn_prompt import attached_nodes, tool_context
from sessions_app.services.turn_state import Frames, PreparedCall, TurnState

if TYPE_CHECKING:
    from tools.base import Tool, ToolResult

logger = logging.getLogger("cortex.sessions")

RESULT_PREVIEW = 4000


class ProviderNotConfigured(errors.ValidationFailed):
    code = "provider_not_configured"


def turn_begin(
    *, message_id: int, budget: TurnBudget | None = None
) -> tuple[TurnState | None, Frames]:
    """Claim a pending assistant message; None if it was finished or reaped meanwhile.

    `budget` tightens the settings' limits for this turn (a scheduled agent's run)."""
    limits = turn_limits()
    budget = budget or TurnBudget()
    with transaction.atomic():
        message = (
            Message.objects.select_for_update()
            .select_related("session__owner")
            .filter(pk=message_id, status=MessageStatus.PENDING)
            .first()
        )
        if message is None:
            return None, []
        session = message.session
        try:
            llm = llm_settings_for(user=session.owner, session=session, timeout=limits.llm_timeout)
            if not llm.provider or not llm.model:
                raise ProviderNotConfigured("Set an LLM provider and model in your preferences.")
            if llm.base_url:
                from providers.ssrf import check_url

                check_url(llm.base_url)  # the same guard every provider call passes
        except errors.CortexError as exc:
            message_fail(
                message=message,
                code="provider_not_configured",
                text=f"No usable LLM provider is configured: {exc.message}",
            )
            return None, []
        message.status = MessageStatus.STREAMING
        message.heartbeat_at = timezone.now()
        message.provider = llm.provider
        message.model = llm.model
        message.save(update_fields=["status", "heartbeat_at", "provider", "model"])
    state = TurnState(
        session_id=session.pk,
        user=session.owner,
        turn_id=message.turn_id or 0,
        message_id=message.pk,
        llm=llm,
        approval_policy=session.approval_policy,
        deadline=time.monotonic() + min(limits.deadline, budget.deadline or limits.deadline),
        max_steps=budget.max_steps,
        max_tokens=budget.max_tokens,
        approval_timeout=budget.approval_timeout,
        end_on_approval_timeout=budget.end_on_approval_timeout,
    )
    return state, []


def turn_heartbeat(*, state: TurnState, beat: bool = True) -> bool:
    """Beat for the current message (when `beat`); True when the user asked to cancel."""
    if beat:
        Message.objects.filter(pk=state.message_id, status__in=UNFINISHED).update(
            heartbeat_at=timezone.now()
        )
    return ChatSession.objects.filter(
        pk=state.session_id, cancel_requested_at__isnull=False
    ).exists()


def delta_store(*, state: TurnState, content: str, delta: str) -> Frames:
    """Persist the text so far and number the delta."""
    Message.objects.filter(pk=state.message_id).update(content=content, heartbeat_at=timezone.now())
    return [
        event_append(
            session_id=state.session_id,
            type=FrameType.MESSAGE_DELTA,
            payload={"message_id": state.message_id, "delta": delta},
        )
    ]


def _normalise_calls(state: TurnState, calls: list[ToolCallDelta]) -> list[dict[str, Any]]:
    stored: list[dict[str, Any]] = []
    for call in calls:
        call_id = call.id
        if not call_id or call_id in state.call_ids:
            # Some providers reuse or omit ids; ours must be unique within the turn.
            call_id = f"call_{uuid.uuid4().hex[:16]}"
        state.call_ids.add(call_id)
        try:
            parsed = json.loads(call.arguments or "{}")
        except ValueError:
            parsed = None
        stored.append(
            {
                "id": call_id,
                "name": call.name,
                "arguments": parsed if isinstance(parsed, dict) else None,
                "raw_arguments": call.arguments or "{}",
            }
        )
    return stored


def assistant_record(
    *,
    state: TurnState,
    content: str,
    calls: list[ToolCallDelta],
    tokens_in: int,
    tokens_out: int,
    latency_ms: int,
) -> tuple[list[dict[str, Any]], Frames]:
    """Store the model's answer for this step; a final answer ends the turn (`message.done`)."""
    frames: Frames = []
    stored = _normalise_calls(state, calls)
    final = not stored
    with transaction.atomic():
        message = Message.objects.select_for_update().get(pk=state.message_id)
        message.content = content
        message.tool_calls = stored
        message.tokens_in = tokens_in
        message.tokens_out = tokens_out
        message.latency_ms = latency_ms
        message.heartbeat_at = timezone.now()
        fields = ["content", "tool_calls", "tokens_in", "tokens_out", "latency_ms", "heartbeat_at"]
        if final:
            message.status = MessageStatus.DONE
            message.finished_at = timezone.now()
            fields += ["status", "finished_at"]
        message.save(update_fields=fields)
        ChatSession.objects.filter(pk=state.session_id).update(
            tokens_in=F("tokens_in") + tokens_in,
            tokens_out=F("tokens_out") + tokens_out,
            updated_at=timezone.now(),
        )
        if final:
            frames.append(_done_frame(state, message, final=True))
    return stored, frames


def _done_frame(state: TurnState, message: Message, *, final: bool) -> dict[str, Any]:
    return event_append(
        session_id=state.session_id,
        type=FrameType.MESSAGE_DONE,
        payload={
            "message_id": message.pk,
            "status": message.status,
            "error_code": message.error_code,
            "final": final,
            "content": message.content,
            "tokens_in": message.tokens_in,
            "tokens_out": message.tokens_out,
        },
    )


def tool_call_prepare(*, state: TurnState, call: dict[str, Any]) -> tuple[PreparedCall, Frames]:
    """Announce the call and decide: refuse now, ask the user, or run."""
    from tools.base import ToolResult
    from tools.registry import registry

    prepared = PreparedCall(call_id=call["id"], name=call["name"], arguments=call["arguments"])
    tool = registry.get(call["name"])
    attached = {a.node.node_id: a for a in attached_nodes(session_id=state.session_id)}
    if tool is not None and prepared.arguments is not None:
        node_ids = tool.node_ids(prepared.arguments)
        prepared.node_id = node_ids[0] if node_ids else ""
    frames = [
        event_append(
            session_id=state.session_id,
            type=FrameType.TOOL_CALL,
            payload={
                "message_id": state.message_id,
                "tool_call_id": prepared.call_id,
                "tool": prepared.name,
                "node_id": prepared.node_id,
                "arguments": prepared.arguments
                if prepared.arguments is not None
                else call["raw_arguments"],
            },
        )
    ]
    if Message.objects.filter(
        session_id=state.session_id, role=MessageRole.TOOL, tool_call_id=prepared.call_id
    ).exists():
        prepared.result = ToolResult.error("already_ran", "This tool call ran already.")
        return prepared, frames
    if tool is None:
        prepared.result = ToolResult.error("unknown_tool", f"No tool named '{prepared.name}'.")
        return prepared, frames
    if prepared.arguments is None:
        prepared.result = ToolResult.error(
            "invalid_arguments", "The arguments are not a valid JSON object."
        )
        return prepared, frames
    missing = [n for n in tool.node_ids(prepared.arguments) if n not in attached]
    if missing:
        prepared.result = ToolResult.error(
            "node_not_attached",
            f"Node '{missing[0]}' is not attached to this chat session.",
            node_id=missing[0],
        )
        return prepared, frames
    # Read afresh: switching a session to "ask" mid-turn applies to the next call.
    state.approval_policy = (
        ChatSession.objects.filter(pk=state.session_id)
        .values_list("approval_policy", flat=True)
        .get()
    )
    # A command a node's policy marks sensitive always waits for a person, whatever the
    # session's policy ("auto" included); an approved call then dispatches confirmed.
    always = tool.approval_reason(prepared.arguments)
    risk = tool.call_risk(prepared.arguments)
    nodes = [attached[n].node for n in tool.node_ids(prepared.arguments)]
    if tool.refused_anyway(prepared.arguments, nodes):
        pass  # the dispatch refuses it (audited); a person's yes could not change that
    elif _sensitive(tool, prepared.arguments, attached):
        prepared.needs_approval, prepared.reason = True, "sensitive_command"
    elif always:  # e.g. JavaScript in a browser page: a person decides every time
        prepared.needs_approval, prepared.reason = True, always
    elif (state.approval_policy == "ask" and risk in ("exec", "write")) or (
        state.approval_policy == "rules" and risk != "read"
    ):
        prepared.needs_approval, prepared.reason = True, f"risk:{risk}"
        _apply_standing_rules(state, tool, prepared, attached)
    return prepared, frames


def _apply_standing_rules(
    state: TurnState, tool: Tool, prepared: PreparedCall, attached: dict[str, SessionNode]
) -> None:
    """A standing rule of the owner that covers the call on every target node answers for the
    person (never for sensitive commands: those are decided before this is reached)."""
    from sessions_app.services.approval_rules import approval_rule_match, approval_rule_used

    arguments = prepared.arguments or {}
    nodes = [attached[n].node for n in tool.node_ids(arguments)]
    rules = approval_rule_match(
        user=state.user,
        session_id=state.session_id,
        tool_name=prepared.name,
        nodes=nodes,
        arguments=arguments,
    )
    if rules is None:
        return
    approval_rule_used(
        rules=rules,
        session_id=state.session_id,
        message_id=state.message_id,
        call={"call_id": prepared.call_id, "arguments": arguments},
    )
    prepared.needs_approval = False
    prepared.reason = "rule:" + ",".join(str(r.pk) for r in rules)


def _sensitive(tool: Tool, arguments: dict[str, Any], attached: dict[str, SessionNode]) -> bool:
    """Whether a node's policy marks the call's command sensitive (an unreadable policy counts
    as sensitive: the person decides, and the dispatch refuses what the policy forbids)."""
    command = arguments.get("command")
    if not isinstance(command, str):
        return False
    from mesh.agent.sandbox import Policy, check_command

    for node_id in tool.node_ids(arguments):
        node = attached[node_id].node
        try:
            verdict = check_command(Policy.from_dict(node.sandbox_policy or {}), command)
        except ValueError:
            return True
        if verdict.sensitive:
            return True
    return False


def tool_execute(*, state: TurnState, prepared: PreparedCall) -> ToolResult:
    """Run the call through the tools registry (validation, grants, dispatch, audit)."""
    from tools.base import ToolResult
    from tools.services import tool_invoke

    # Only a call a person approved carries the confirmation its sensitive command needs.
    context = tool_context(state=state, call_id=prepared.call_id, confirmed=prepared.approved)
    try:
        return tool_invoke(context=context, name=prepared.name, arguments=prepared.arguments or {})
    except Exception:
        logger.exception("tool %s failed in session %s", prepared.name, state.session_id)
        return ToolResult.error("tool_failed", f"The tool '{prepared.name}' failed unexpectedly.")


def tool_result_store(*, state: TurnState, prepared: PreparedCall, result: ToolResult) -> Frames:
    """Store the result as a `tool` message linked to its tasks, and announce it."""
    with transaction.atomic():
        message = Message(
            session_id=state.session_id,
            turn_id=state.turn_id or None,
            role=MessageRole.TOOL,
            content=result.text,
            status=MessageStatus.DONE if result.ok else MessageStatus.FAILED,
            tool_call_id=prepared.call_id,
            tool_name=prepared.name,
            tool_result=result.as_dict(),
            task_ids=[str(t) for t in result.task_ids],
            error_code=result.error_code,
            finished_at=timezone.now(),
        )
        message.full_clean(exclude=["session", "turn"])
        message.save()
        frame = event_append(
            session_id=state.session_id,
            type=FrameType.TOOL_RESULT,
            payload={
                "message_id": message.pk,
                "assistant_message_id": state.message_id,
                "tool_call_id": prepared.call_id,
                "tool": prepared.name,
                "node_id": prepared.node_id,
                "ok": result.ok,
                "error_code": result.error_code,
                "text": result.text[:RESULT_PREVIEW],
                "task_ids": message.task_ids,
                "allowed_by_rule": prepared.reason.startswith("rule:"),
            },
        )
    return [frame]


def step_next(*, state: TurnState) -> Frames:
    """Close this step's message (its tool calls are answered) and open the next one."""
    with transaction.atomic():
        message = Message.objects.select_for_update().get(pk=state.message_id)
        message.status = MessageStatus.DONE
        message.finished_at = timezone.now()
        message.save(update_fields=["status", "finished_at"])
        frames = [_done_frame(state, message, final=False)]
        nxt = Message(
            session_id=state.session_id,
            turn_id=state.turn_id or None,
            role=MessageRole.ASSISTANT,
            status=MessageStatus.STREAMING,
            provider=state.llm.provider,
            model=state.llm.model,
            heartbeat_at=timezone.now(),
        )
        nxt.save()
        state.message_id = nxt.pk
    return frames


def turn_fail(*, state: TurnState, code: str, text: str, status: str = "failed") -> None:
    """End the turn on its current message (failed or cancelled); broadcasts on commit."""
    with transaction.atomic():
        message = (
            Message.objects.select_for_update()
            .filter(pk=state.message_id, status__in=UNFINISHED)
            .first()
        )
        if message is not None:
            message_fail(message=message, code=code, text=text, status=status)
    if state.stop_reason:
        _cancel_tasks(state)


def _cancel_tasks(state: TurnState) -> None:
    """Cancel the mesh tasks this turn's tool calls started that are still running."""
    from mesh import services as mesh_services
    from mesh.models import Task

    ids = list(
        Message.objects.filter(turn_id=state.turn_id, role=MessageRole.TOOL).values_list(
            "task_ids", flat=True
        )
    )
    call_ids = set(state.call_ids)
    running = Task.objects.filter(
        chat_session_id=state.session_id,
        status__in=["queued", "dispatched", "running"],
    ).filter(Q(tool_call_id__in=call_ids) | Q(id__in=[t for group in ids for t in group]))
    for task in running:
        try:
            mesh_services.task_cancel(
                actor=state.user,
                task=task,
                reason=f"chat turn {state.stop_reason}",
                audit_context=CHAT_CONTEXT,
            )
        except errors.CortexError:
            logger.info("could not cancel task %s", task.pk)
