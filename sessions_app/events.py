"""Group names and frame types of the `/ws/sessions/{id}/` stream.

Every frame is `{"type": <FrameType>, "seq": N, ...payload}`; `seq` counts per session and each
frame is also stored as a `TurnEvent`, so a client that reconnects replays what it missed.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

SESSION_GROUP = "sessions.session.{session_id}"
#: The `type` of channel-layer messages to the group; consumers handle it as `session_frame`.
GROUP_MESSAGE_TYPE = "session.frame"


class FrameType(StrEnum):
    MESSAGE_DELTA = "message.delta"
    TOOL_CALL = "tool.call"
    TOOL_APPROVAL_REQUIRED = "tool.approval_required"
    TOOL_RESULT = "tool.result"
    MESSAGE_DONE = "message.done"
    ERROR = "error"


def session_group(session_id: int) -> str:
    return SESSION_GROUP.format(session_id=session_id)


def frame_of(*, type: str, seq: int, payload: dict[str, Any]) -> dict[str, Any]:  # noqa: A002
    """The wire shape of one stored event."""
    return {**payload, "type": type, "seq": seq}
