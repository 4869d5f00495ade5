"""Fixtures for sessions_app: a scripted LLM server and a user whose preferences point at it."""

from __future__ import annotations

from typing import Any

import pytest

from providers.tests.conftest import API_KEY, llm_server  # noqa: F401  # fixture
from providers.tests.llm_server import ScriptedLLM


@pytest.fixture
def fast_turns(settings: Any) -> Any:
    settings.SESSIONS_POLL_INTERVAL = 0.05
    settings.SESSIONS_HEARTBEAT = 0.5
    settings.SESSIONS_LLM_TIMEOUT = 5.0
    settings.SESSIONS_APPROVAL_TIMEOUT = 30.0
    return settings


def configure_llm(user: Any, server: ScriptedLLM, *, provider: str = "openai_compatible") -> None:
    """The user's own llm preference layer, written through the preferences service."""
    from preferences.services import layer_update

    base = server.url + "/v1" if provider == "openai_compatible" else server.url
    layer_update(
        actor=user,
        scope="user",
        kind="llm",
        user=user,
        data={"provider": provider, "base_url": base, "api_key": API_KEY, "model": "test-model"},
    )
