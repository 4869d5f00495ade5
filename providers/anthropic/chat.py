"""Anthropic Messages API, streamed, with `tool_use` blocks."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from providers.llm import ErrorCode, LLMClient, LLMError, StreamChunk, ToolCallDelta, post_sse

DEFAULT_BASE_URL = "https://api.anthropic.com"
API_VERSION = "2023-06-01"


def _json_or_empty(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text or "{}")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def to_anthropic_messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Neutral messages -> alternating user/assistant messages with content blocks."""
    converted: list[dict[str, Any]] = []

    def append(role: str, blocks: list[dict[str, Any]]) -> None:
        if converted and converted[-1]["role"] == role:
            converted[-1]["content"].extend(blocks)
        else:
            converted.append({"role": role, "content": blocks})

    for message in messages:
        role = message["role"]
        content = message.get("content") or ""
        if role == "tool":
            append(
                "user",
                [
                    {
                        "type": "tool_result",
                        "tool_use_id": message["tool_call_id"],
                        "content": content,
                    }
                ],
            )
        elif role == "assistant":
            blocks: list[dict[str, Any]] = [{"type": "text", "text": content}] if content else []
            for call in message.get("tool_calls") or []:
                blocks.append(
                    {
                        "type": "tool_use",
                        "id": call["id"],
                        "name": call["name"],
                        "input": _json_or_empty(call["arguments"]),
                    }
                )
            if blocks:
                append("assistant", blocks)
        else:
            append("user", [{"type": "text", "text": content}])
    return converted


class AnthropicClient(LLMClient):
    """Claude models through `POST /v1/messages` with `stream: true`."""

    provider = "anthropic"

    async def _stream(
        self, *, system: str, messages: list[dict[str, Any]], tools: list[dict[str, Any]]
    ) -> AsyncIterator[StreamChunk]:
        body: dict[str, Any] = {
            "model": self.settings.model,
            "max_tokens": self.settings.max_tokens,
            "messages": to_anthropic_messages(messages),
            "stream": True,
        }
        if system:
            body["system"] = system
        if tools:
            body["tools"] = [
                {
                    "name": t["function"]["name"],
                    "description": t["function"].get("description", ""),
                    "input_schema": t["function"].get("parameters") or {"type": "object"},
                }
                for t in tools
            ]
        if self.settings.temperature is not None:
            body["temperature"] = self.settings.temperature
        headers = {
            "x-api-key": self.settings.api_key,
            "anthropic-version": API_VERSION,
            "content-type": "application/json",
        }
        base = (self.settings.base_url or DEFAULT_BASE_URL).rstrip("/")
        url = base + ("/messages" if base.endswith("/v1") else "/v1/messages")
        blocks: dict[int, dict[str, str]] = {}
        async for event in post_sse(
            provider=self.provider,
            url=url,
            headers=headers,
            body=body,
            timeout=self.settings.timeout,
        ):
            kind = event.get("type")
            if kind == "message_start":
                usage = (event.get("message") or {}).get("usage") or {}
                yield StreamChunk(tokens_in=int(usage.get("input_tokens") or 0))
            elif kind == "content_block_start":
                block = event.get("content_block") or {}
                if block.get("type") == "tool_use":
                    blocks[int(event.get("index", 0))] = {
                        "id": block.get("id", ""),
                        "name": block.get("name", ""),
                        "args": "",
                    }
                elif block.get("text"):
                    yield StreamChunk(text=block["text"])
            elif kind == "content_block_delta":
                delta = event.get("delta") or {}
                if delta.get("type") == "text_delta":
                    yield StreamChunk(text=delta.get("text", ""))
                elif delta.get("type") == "input_json_delta":
                    slot = blocks.get(int(event.get("index", 0)))
                    if slot is not None:
                        slot["args"] += delta.get("partial_json", "")
            elif kind == "content_block_stop":
                slot = blocks.pop(int(event.get("index", 0)), None)
                if slot is not None:
                    yield StreamChunk(
                        tool_call=ToolCallDelta(
                            id=slot["id"], name=slot["name"], arguments=slot["args"] or "{}"
                        )
                    )
            elif kind == "message_delta":
                usage = event.get("usage") or {}
                stop = (event.get("delta") or {}).get("stop_reason") or ""
                yield StreamChunk(tokens_out=int(usage.get("output_tokens") or 0))
                if stop:
                    yield StreamChunk(finish_reason=stop)
            elif kind == "error":
                error_type = (event.get("error") or {}).get("type", "")
                code: ErrorCode = (
                    "rate_limited" if error_type == "rate_limit_error" else "provider_unavailable"
                )
                raise LLMError(
                    code,
                    f"{self.provider} reported an error during the answer ({error_type}).",
                    provider=self.provider,
                )
