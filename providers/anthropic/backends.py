"""Anthropic Messages API: parameters and verification via the official `anthropic` client.

The streaming chat client is in chat.py.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from providers.anthropic.chat import DEFAULT_BASE_URL, AnthropicClient
from providers.base import ChatBackend, Parameter, VerifyResult
from providers.http import httpx2_client, run_verify
from providers.registry import registry

if TYPE_CHECKING:
    import anthropic  # imported where used: the SDK costs seconds at every start-up


def anthropic_client(values: dict[str, Any], timeout: float) -> anthropic.Anthropic:
    """An official client on the guarded transport, with no retries and no redirects."""
    import anthropic

    return anthropic.Anthropic(
        api_key=values.get("api_key") or "",
        base_url=values.get("base_url") or DEFAULT_BASE_URL,
        timeout=timeout,
        max_retries=0,
        http_client=httpx2_client(timeout),
    )


class AnthropicLLM(ChatBackend):
    kind = "llm"
    id = "anthropic"
    label = "Anthropic Messages API"
    client_class = AnthropicClient
    parameters: ClassVar[tuple[Parameter, ...]] = (
        Parameter("base_url", "url", default=DEFAULT_BASE_URL),
        Parameter("api_key", "string", secret=True, required=True),
        Parameter("model", "string", required=True, description="e.g. claude-sonnet-4-5."),
        Parameter("temperature", "number"),
        Parameter("max_tokens", "integer", default=4096),
    )

    def verify(self, values: dict[str, Any], timeout: float) -> VerifyResult:
        def call() -> None:
            with anthropic_client(values, timeout) as client:
                client.messages.create(
                    model=values["model"],
                    max_tokens=1,
                    messages=[{"role": "user", "content": "ping"}],
                )

        return run_verify(call, [values.get("api_key") or ""])


registry.register(AnthropicLLM())
