"""Tell the owner about a run on `/ws/me/` (group `mesh.user.{id}`, frame `agent.run`).

The channel layer is a doorbell: a lost frame costs only latency; the console reads runs
over REST.
"""

from __future__ import annotations

from typing import Any

#: Frame type on `/ws/me/`; MeConsumer passes it on as it is.
AGENT_RUN = "agent.run"


def _frame(
    *,
    agent_id: int,
    run_id: int,
    status: str,
    session_id: int | None,
    approval: dict[str, Any] | None = None,
) -> dict[str, Any]:
    from mesh import events

    frame: dict[str, Any] = {
        "type": AGENT_RUN,
        "seq": events.frame_seq(),
        "agent_id": agent_id,
        "run_id": run_id,
        "status": status,
        "session_id": session_id,
    }
    if approval is not None:
        frame["approval"] = approval
    return frame


async def run_notify(
    *,
    owner_id: int,
    agent_id: int,
    run_id: int,
    status: str,
    session_id: int | None = None,
    approval: dict[str, Any] | None = None,
) -> None:
    from mesh import events

    frame = _frame(
        agent_id=agent_id, run_id=run_id, status=status, session_id=session_id, approval=approval
    )
    await events.asend(events.group_name(events.USER_NODES_GROUP, user_id=owner_id), frame)


def run_notify_on_commit(
    *, owner_id: int, agent_id: int, run_id: int, status: str, session_id: int | None = None
) -> None:
    """`run_notify` from sync code, once the current transaction commits."""
    from mesh import events

    frame = _frame(agent_id=agent_id, run_id=run_id, status=status, session_id=session_id)
    events.send_on_commit(events.group_name(events.USER_NODES_GROUP, user_id=owner_id), frame)
