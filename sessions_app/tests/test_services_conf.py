"""sessions_app/services/conf.py: turn limits are read from settings at call time."""

from __future__ import annotations

from sessions_app.services.conf import TurnLimits, turn_limits


def test_turn_limits_defaults_and_settings(settings) -> None:  # type: ignore[no-untyped-def]
    for name in (
        "SESSIONS_MAX_STEPS",
        "SESSIONS_TURN_DEADLINE",
        "SESSIONS_APPROVAL_TIMEOUT",
        "SESSIONS_STALE_AFTER",
        "SESSIONS_HEARTBEAT",
        "SESSIONS_POLL_INTERVAL",
        "SESSIONS_DELTA_INTERVAL",
        "SESSIONS_LLM_TIMEOUT",
    ):
        if hasattr(settings, name):
            delattr(settings, name)
    assert turn_limits() == TurnLimits(12, 900.0, 300.0, 60.0, 5.0, 0.25, 0.05, 120.0)
    settings.SESSIONS_MAX_STEPS = "3"
    settings.SESSIONS_HEARTBEAT = 1
    limits = turn_limits()
    assert (limits.max_steps, limits.heartbeat) == (3, 1.0)
    assert limits.stale_after > limits.heartbeat
