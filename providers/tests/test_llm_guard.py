"""The LLM clients connect only through preferences' SSRF guard, checked at connect time."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import override_settings

from providers.llm import LLMError, LLMSettings
from providers.registry import registry
from providers.tests.conftest import API_KEY
from providers.tests.llm_server import ScriptedLLM, openai_text

PROVIDERS = ["openai_compatible", "anthropic", "gemini"]


def _settings(provider: str, server: ScriptedLLM, host: str) -> LLMSettings:
    base = f"http://{host}:{server.port}" + ("/v1" if provider == "openai_compatible" else "")
    return LLMSettings(provider=provider, model="m-1", api_key=API_KEY, base_url=base, timeout=2.0)


async def _text(settings: LLMSettings) -> str:
    parts: list[str] = []
    async for chunk in registry.chat_client(settings).stream(
        system="", messages=[{"role": "user", "content": "hi"}], tools=[]
    ):
        parts.append(chunk.text)
    return "".join(parts)


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_name_resolving_to_loopback_is_refused_and_not_retried(llm_server, provider):
    # Only the literal address is allowed: "localhost" resolves to loopback at connect time.
    with override_settings(PROVIDER_ALLOWED_HOSTS=["127.0.0.1"]), pytest.raises(LLMError) as caught:
        await _text(_settings(provider, llm_server, "localhost"))
    error: Any = caught.value
    assert (error.code, error.provider, error.retryable) == ("blocked_address", provider, False)
    assert "CORTEX_PROVIDER_ALLOWED_HOSTS" in error.message
    assert API_KEY not in error.message
    assert llm_server.requests == []


async def test_allowed_name_streams_through_the_official_client(llm_server):
    llm_server.add(openai_text(["guarded ", "and fine"]))
    with override_settings(PROVIDER_ALLOWED_HOSTS=["localhost"]):
        text = await _text(_settings("openai_compatible", llm_server, "localhost"))
    assert text == "guarded and fine"
    (request,) = llm_server.requests
    assert request["path"] == "/v1/chat/completions"
    assert request["body"]["stream"] is True
    # The SDK's own retries are off: no retry-count header beyond the first attempt.
    headers = {k.lower(): v for k, v in request["headers"].items()}
    assert headers["authorization"] == f"Bearer {API_KEY}"
    assert headers.get("x-stainless-retry-count", "0") == "0"
