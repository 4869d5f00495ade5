"""The turn asks the provider registry for its chat client: a provider the registry holds is
usable for a session with no change to sessions_app (adding a provider touches one package)."""

from __future__ import annotations

from typing import Any

import pytest

from cortex.testing import wait_until
from preferences.services import layer_update
from providers.base import ChatBackend
from providers.openai_compatible.backends import OpenAICompatibleLLM
from providers.openai_compatible.chat import OpenAICompatibleClient
from providers.registry import registry
from providers.tests.conftest import API_KEY
from providers.tests.llm_server import openai_text
from sessions_app.models import Message

pytestmark = pytest.mark.django_db(transaction=True)


class ScriptedLLMBackend(ChatBackend):
    """A provider package's llm backend as a plugin would declare it: an id, its parameters,
    and the client speaking its protocol (here the OpenAI one, to the loopback server)."""

    id = "scripted_plugin"
    label = "Scripted plugin"
    parameters = OpenAICompatibleLLM.parameters
    client_class = OpenAICompatibleClient


def _finished(message_id: int) -> Message | None:
    message = Message.objects.get(pk=message_id)
    return message if message.status not in ("pending", "streaming") else None


def test_a_registered_provider_runs_turns_with_no_change_to_sessions(
    user: Any, user_client: Any, llm_server: Any, fast_turns: Any
) -> None:
    with registry.temporarily(ScriptedLLMBackend()):
        layer_update(
            actor=user,
            scope="user",
            kind="llm",
            user=user,
            data={
                "provider": "scripted_plugin",
                "base_url": llm_server.url + "/v1",
                "api_key": API_KEY,
                "model": "plugin-model",
            },
        )
        llm_server.add(openai_text(["from ", "the plugin"]))
        created = user_client.post(
            "/api/v1/sessions/", {"title": "t", "provider": "scripted_plugin"}, format="json"
        )
        assert created.status_code == 201, created.content
        assert created.json()["provider"] == "scripted_plugin"
        posted = user_client.post(
            f"/api/v1/sessions/{created.json()['id']}/messages/", {"content": "hi"}, format="json"
        )
        assert posted.status_code == 202, posted.content
        assistant = wait_until(lambda: _finished(posted.json()["assistant_message_id"]))
    assert (assistant.status, assistant.content) == ("done", "from the plugin")
    assert (assistant.provider, assistant.model) == ("scripted_plugin", "plugin-model")
    assert llm_server.requests[0]["body"]["model"] == "plugin-model"


def test_session_provider_choices_are_the_registered_llm_backends(user_client: Any) -> None:
    refused = user_client.post(
        "/api/v1/sessions/", {"title": "t", "provider": "scripted_plugin"}, format="json"
    )
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "invalid_input"
    assert list(refused.json()["error"]["fields"]) == ["provider"]
    for backend_id in ("openai_compatible", "anthropic", "gemini"):
        created = user_client.post(
            "/api/v1/sessions/", {"title": "t", "provider": backend_id}, format="json"
        )
        assert created.status_code == 201, created.content
