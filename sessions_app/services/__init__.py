"""Write services of the sessions_app app (split by subdomain, re-exported here)."""

from sessions_app.services.approvals import ApprovalDecided, approval_decide
from sessions_app.services.events import event_append
from sessions_app.services.messages import (
    NoTurnRunning,
    SessionArchived,
    TurnInProgress,
    message_post,
    turn_cancel,
    turn_may_start,
)
from sessions_app.services.scheduler import turn_schedule
from sessions_app.services.sessions import (
    NodeAlreadyAttached,
    node_attach,
    node_detach,
    session_create,
    session_delete,
    session_update,
    turns_reap_stale,
)
from sessions_app.services.voice import (
    NothingHeard,
    NotSpeakable,
    message_post_audio,
    message_speech,
)

__all__ = [
    "ApprovalDecided",
    "NoTurnRunning",
    "NodeAlreadyAttached",
    "NotSpeakable",
    "NothingHeard",
    "SessionArchived",
    "TurnInProgress",
    "approval_decide",
    "event_append",
    "message_post",
    "message_post_audio",
    "message_speech",
    "node_attach",
    "node_detach",
    "session_create",
    "session_delete",
    "session_update",
    "turn_cancel",
    "turn_may_start",
    "turn_schedule",
    "turns_reap_stale",
]
