"""LLM clients: one streaming, tool-calling implementation per provider backend."""

from __future__ import annotations

from sessions_app.llm.base import LLMClient, LLMError, LLMSettings, StreamChunk, ToolCallDelta


def client_for(settings: LLMSettings) -> LLMClient:
    """The client of `settings.provider`; an unknown backend is a provider error."""
    from sessions_app.llm.anthropic import AnthropicClient
    from sessions_app.llm.gemini import GeminiClient
    from sessions_app.llm.openai_compatible import OpenAICompatibleClient

    clients: dict[str, type[LLMClient]] = {
        OpenAICompatibleClient.provider: OpenAICompatibleClient,
        AnthropicClient.provider: AnthropicClient,
        GeminiClient.provider: GeminiClient,
    }
    client = clients.get(settings.provider)
    if client is None:
        raise LLMError(
            "provider_unavailable",
            f"No LLM backend named '{settings.provider}'.",
            provider=settings.provider or "unknown",
        )
    return client(settings)


__all__ = ["LLMClient", "LLMError", "LLMSettings", "StreamChunk", "ToolCallDelta", "client_for"]
