"""OpenAI-compatible chat completions through the official `openai` client, streamed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

import httpx2

from providers.errors import BlockedAddress
from providers.http import httpx2_async_client
from providers.llm import LLMClient, LLMError, StreamChunk, ToolCallDelta

if TYPE_CHECKING:
    import openai  # imported where used: the SDK costs seconds at every start-up

DEFAULT_BASE_URL = "https://api.openai.com/v1"


def to_openai_messages(system: str, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Neutral messages -> chat-completions messages."""
    converted: list[dict[str, Any]] = [{"role": "system", "content": system}] if system else []
    for message in messages:
        role = message["role"]
        if role == "tool":
            converted.append(
                {
                    "role": "tool",
                    "tool_call_id": message["tool_call_id"],
                    "content": message.get("content") or "",
                }
            )
        elif role == "assistant" and message.get("tool_calls"):
            converted.append(
                {
                    "role": "assistant",
                    "content": message.get("content") or None,
                    "tool_calls": [
                        {
                            "id": call["id"],
                            "type": "function",
                            "function": {"name": call["name"], "arguments": call["arguments"]},
                        }
                        for call in message["tool_calls"]
                    ],
                }
            )
        else:
            converted.append({"role": role, "content": message.get("content") or ""})
    return converted


class OpenAICompatibleClient(LLMClient):
    """Any server speaking OpenAI's chat-completions protocol with SSE streaming."""

    provider = "openai_compatible"

    def _client(self) -> openai.AsyncOpenAI:
        """The official client on a guarded transport, with its own retries switched off."""
        import openai

        seconds = self.settings.timeout
        timeout = httpx2.Timeout(seconds, connect=min(10.0, seconds))
        return openai.AsyncOpenAI(
            api_key=self.settings.api_key or "unset",
            base_url=self.settings.base_url or DEFAULT_BASE_URL,
            max_retries=0,  # our own retry policy lives in LLMClient.stream
            timeout=timeout,
            # Every connect passes the providers' SSRF guard (DNS rebinding included).
            http_client=httpx2_async_client(timeout),
        )

    async def _stream(
        self, *, system: str, messages: list[dict[str, Any]], tools: list[dict[str, Any]]
    ) -> AsyncIterator[StreamChunk]:
        import openai

        client = self._client()
        kwargs: dict[str, Any] = {
            "model": self.settings.model,
            "messages": to_openai_messages(system, messages),
            "stream": True,
            "stream_options": {"include_usage": True},
            "max_tokens": self.settings.max_tokens,
        }
        if tools:
            kwargs["tools"] = tools
        if self.settings.temperature is not None:
            kwargs["temperature"] = self.settings.temperature
        calls: dict[int, dict[str, str]] = {}
        try:
            stream = await client.chat.completions.create(**kwargs)
            async for chunk in stream:
                if chunk.usage is not None:
                    yield StreamChunk(
                        tokens_in=chunk.usage.prompt_tokens or 0,
                        tokens_out=chunk.usage.completion_tokens or 0,
                    )
                for choice in chunk.choices or []:
                    delta = choice.delta
                    if delta is not None and delta.content:
                        yield StreamChunk(text=delta.content)
                    for part in (delta.tool_calls if delta is not None else None) or []:
                        slot = calls.setdefault(part.index, {"id": "", "name": "", "args": ""})
                        if part.id:
                            slot["id"] = part.id
                        if part.function is not None:
                            slot["name"] += part.function.name or ""
                            slot["args"] += part.function.arguments or ""
                    if choice.finish_reason:
                        for index in sorted(calls):
                            slot = calls[index]
                            yield StreamChunk(
                                tool_call=ToolCallDelta(
                                    id=slot["id"] or f"call_{index}",
                                    name=slot["name"],
                                    arguments=slot["args"],
                                )
                            )
                        calls.clear()
                        yield StreamChunk(finish_reason=choice.finish_reason)
        except (openai.APIError, BlockedAddress) as exc:  # classified by providers.errors
            # An SDK error with no status and no failed connect (a broken stream, an error
            # event mid-stream) means the answer was unusable.
            raise LLMError.from_exception(
                exc, self.provider, fallback="sent an unusable answer"
            ) from exc
        finally:
            await client.close()
        for index in sorted(calls):  # a server that never sent finish_reason
            slot = calls[index]
            yield StreamChunk(
                tool_call=ToolCallDelta(
                    id=slot["id"] or f"call_{index}", name=slot["name"], arguments=slot["args"]
                )
            )
