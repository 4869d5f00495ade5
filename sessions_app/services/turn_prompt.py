"""What the model is told: the system prompt, the history and the tools it may call."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cortex import errors
from sessions_app.models import Message, MessageRole, SessionNode
from sessions_app.services.turn_state import TurnState

if TYPE_CHECKING:
    from tools.base import ToolContext

HISTORY_LIMIT = 400
SYSTEM_PROMPT = (
    "You are Cortex, an assistant that works on the user's machines (nodes) through tools. "
    "Use a tool only when it helps answer; name the node in every tool call; explain what you "
    "did and what came out. The user may have to approve commands before they run; a denied "
    "or failed call comes back as an error you should react to, not retry blindly."
)


def attached_nodes(*, session_id: int) -> list[SessionNode]:
    """The session's attached nodes, with their node rows."""
    return list(SessionNode.objects.filter(session_id=session_id).select_related("node"))


def tool_context(*, state: TurnState, call_id: str = "", confirmed: bool = False) -> ToolContext:
    """A ToolContext with the nodes attached right now (a detached node is refused);
    `confirmed` only for a call a person approved."""
    from tools.base import ToolContext
    from workspaces.selectors import workspace_node_folders

    # With a shared workspace, tools on a node start in the session's folder there.
    folders = workspace_node_folders(session_id=state.session_id)
    return ToolContext(
        user=state.user,
        chat_session_id=state.session_id,
        attached_nodes={
            a.node.node_id: folders.get(a.node.node_id, a.working_dir)
            for a in attached_nodes(session_id=state.session_id)
        },
        message_id=state.message_id,
        tool_call_id=call_id,
        confirmed=confirmed,
    )


def tool_specs(*, state: TurnState) -> list[dict[str, Any]]:
    """Function declarations for the tools this user may call with these nodes."""
    from tools import selectors as tool_selectors

    return [
        t.openai_schema()
        for t in tool_selectors.tools_for_context(context=tool_context(state=state))
    ]


def _system_prompt(state: TurnState) -> str:
    parts = [SYSTEM_PROMPT]
    attached = attached_nodes(session_id=state.session_id)
    if attached:
        lines = ["Nodes attached to this session (use their node_id in tool calls):"]
        for a in attached:
            node = a.node
            where = a.working_dir or "the agent's default directory"
            lines.append(
                f"- {node.node_id} ({node.display_name}): status {node.status}; "
                f"working directory {where}. {node.description}".rstrip()
            )
        parts.append("\n".join(lines))
    else:
        parts.append("No nodes are attached to this session, so node tools cannot be used.")
    from tools.selectors import skills_prompt_for_user

    try:
        skills = skills_prompt_for_user(user=state.user)
    except errors.CortexError:
        skills = ""
    if skills:
        parts.append(skills)
    return "\n\n".join(parts)


def _history(state: TurnState) -> list[dict[str, Any]]:
    """The conversation for the model; calls that never got a result get a stand-in result."""
    rows = list(
        Message.objects.filter(session_id=state.session_id, id__lt=state.message_id)
        .exclude(role=MessageRole.SYSTEM)
        .order_by("-id")[:HISTORY_LIMIT]
    )
    rows.reverse()
    answered = {m.tool_call_id for m in rows if m.role == MessageRole.TOOL}
    history: list[dict[str, Any]] = []
    for m in rows:
        if m.role == MessageRole.USER:
            history.append({"role": "user", "content": m.content})
        elif m.role == MessageRole.TOOL:
            history.append(
                {
                    "role": "tool",
                    "tool_call_id": m.tool_call_id,
                    "name": m.tool_name,
                    "content": m.content,
                }
            )
        elif m.role == MessageRole.ASSISTANT:
            calls = [
                {"id": c["id"], "name": c["name"], "arguments": c.get("raw_arguments") or "{}"}
                for c in m.tool_calls or []
            ]
            if not m.content and not calls:
                continue
            history.append({"role": "assistant", "content": m.content, "tool_calls": calls})
            for call in calls:
                if call["id"] not in answered:
                    history.append(
                        {
                            "role": "tool",
                            "tool_call_id": call["id"],
                            "name": call["name"],
                            "content": "Error (not_run): the call did not run; the turn ended.",
                        }
                    )
    return history


def turn_context(*, state: TurnState) -> tuple[str, list[dict[str, Any]]]:
    return _system_prompt(state), _history(state)
