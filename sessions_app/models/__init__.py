"""Models of the sessions_app app, one module per aggregate."""

from sessions_app.models.messages import (
    ApprovalStatus,
    Message,
    MessageRole,
    MessageStatus,
    ToolApproval,
    TurnEvent,
)
from sessions_app.models.rules import ApprovalRule
from sessions_app.models.sessions import ApprovalPolicy, ChatSession, SessionNode

__all__ = [
    "ApprovalPolicy",
    "ApprovalRule",
    "ApprovalStatus",
    "ChatSession",
    "Message",
    "MessageRole",
    "MessageStatus",
    "SessionNode",
    "ToolApproval",
    "TurnEvent",
]
