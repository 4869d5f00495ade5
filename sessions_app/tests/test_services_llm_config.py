"""sessions_app/services/llm_config.py: a session's provider/model choice layers over the
user's preferences; the turn's LLM settings come from the one preferences selector."""

from __future__ import annotations

import pytest

from preferences.services import layer_update
from sessions_app.models import ChatSession
from sessions_app.services.llm_config import llm_settings_for, session_override

pytestmark = pytest.mark.django_db

KEY = "sk-llm-config-key-0123456789"


def test_session_override_names_only_what_the_session_sets() -> None:
    assert session_override(ChatSession(provider="", model="")) is None
    assert session_override(ChatSession(provider="", model="m2")) == {"model": "m2"}
    assert session_override(ChatSession(provider="anthropic", model="m2")) == {
        "provider": "anthropic",
        "model": "m2",
    }


def test_llm_settings_for_layers_the_session_over_the_user(user) -> None:  # type: ignore[no-untyped-def]
    layer_update(
        actor=user,
        scope="user",
        kind="llm",
        user=user,
        data={
            "provider": "openai_compatible",
            "base_url": "http://127.0.0.1:9/v1",
            "api_key": KEY,
            "model": "mine",
        },
    )
    plain = ChatSession.objects.create(owner=user)
    llm = llm_settings_for(user=user, session=plain, timeout=7.5)
    assert (llm.provider, llm.model, llm.api_key) == ("openai_compatible", "mine", KEY)
    assert llm.base_url == "http://127.0.0.1:9/v1"
    assert llm.timeout == 7.5 and llm.max_tokens == 4096 and llm.temperature is None

    chosen = ChatSession.objects.create(owner=user, model="theirs")
    assert llm_settings_for(user=user, session=chosen, timeout=1).model == "theirs"


def test_llm_settings_for_without_a_provider_is_empty_and_keyless(user) -> None:  # type: ignore[no-untyped-def]
    llm = llm_settings_for(user=user, session=ChatSession.objects.create(owner=user), timeout=1)
    assert (llm.provider, llm.model, llm.api_key, llm.base_url) == ("", "", "", "")
