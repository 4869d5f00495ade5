"""The state a running turn carries between its database steps."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from accounts.models import User
from providers.llm import LLMSettings

Frames = list[dict[str, Any]]


@dataclass
class TurnState:
    """What the runner knows about the turn it is driving."""

    session_id: int
    user: User
    turn_id: int
    message_id: int
    llm: LLMSettings
    approval_policy: str
    deadline: float
    stop_reason: str = ""
    call_ids: set[str] = field(default_factory=set)
    #: per-turn budget (0: the SESSIONS_* settings); scheduled agents set these
    max_steps: int = 0
    max_tokens: int = 0
    tokens_used: int = 0
    approval_timeout: float = 0.0
    #: an unanswered approval ends the turn (`approval_timed_out`) instead of telling the model
    end_on_approval_timeout: bool = False


@dataclass
class PreparedCall:
    """A tool call checked before it may run; `result` set means it will not run."""

    call_id: str
    name: str
    arguments: dict[str, Any] | None
    node_id: str = ""
    needs_approval: bool = False
    approved: bool = False  # a person approved it: its task is dispatched confirmed
    reason: str = ""
    result: Any = None
