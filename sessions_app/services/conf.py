"""Turn limits, read from settings at call time (defaults suit a laptop)."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings


@dataclass(frozen=True)
class TurnLimits:
    max_steps: int
    deadline: float
    approval_timeout: float
    stale_after: float
    heartbeat: float
    poll: float
    delta_interval: float
    llm_timeout: float


@dataclass(frozen=True)
class TurnBudget:
    """Limits of one turn tighter than the settings (a scheduled agent's run); 0: no limit."""

    max_steps: int = 0
    deadline: float = 0.0
    max_tokens: int = 0
    approval_timeout: float = 0.0
    end_on_approval_timeout: bool = False


def turn_limits() -> TurnLimits:
    """`SESSIONS_*` settings; `stale_after` must exceed `heartbeat` several times over."""
    return TurnLimits(
        max_steps=int(getattr(settings, "SESSIONS_MAX_STEPS", 12)),
        deadline=float(getattr(settings, "SESSIONS_TURN_DEADLINE", 900.0)),
        approval_timeout=float(getattr(settings, "SESSIONS_APPROVAL_TIMEOUT", 300.0)),
        stale_after=float(getattr(settings, "SESSIONS_STALE_AFTER", 60.0)),
        heartbeat=float(getattr(settings, "SESSIONS_HEARTBEAT", 5.0)),
        poll=float(getattr(settings, "SESSIONS_POLL_INTERVAL", 0.25)),
        delta_interval=float(getattr(settings, "SESSIONS_DELTA_INTERVAL", 0.05)),
        llm_timeout=float(getattr(settings, "SESSIONS_LLM_TIMEOUT", 120.0)),
    )
