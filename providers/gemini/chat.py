"""Google Gemini `streamGenerateContent` (SSE) with function calling."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from providers.gemini.urls import model_path
from providers.llm import LLMClient, StreamChunk, ToolCallDelta, post_sse

_UNSUPPORTED_SCHEMA_KEYS = {"additionalProperties", "$schema", "default", "examples"}


def gemini_schema(schema: Any) -> Any:
    """JSON schema -> the OpenAPI subset Gemini accepts (drops keys it rejects)."""
    if isinstance(schema, dict):
        return {k: gemini_schema(v) for k, v in schema.items() if k not in _UNSUPPORTED_SCHEMA_KEYS}
    if isinstance(schema, list):
        return [gemini_schema(v) for v in schema]
    return schema


def to_gemini_contents(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Neutral messages -> `contents` with roles user/model and function parts."""
    contents: list[dict[str, Any]] = []

    def append(role: str, parts: list[dict[str, Any]]) -> None:
        if contents and contents[-1]["role"] == role:
            contents[-1]["parts"].extend(parts)
        else:
            contents.append({"role": role, "parts": parts})

    for message in messages:
        role = message["role"]
        content = message.get("content") or ""
        if role == "tool":
            append(
                "user",
                [
                    {
                        "functionResponse": {
                            "name": message.get("name", ""),
                            "response": {"content": content},
                        }
                    }
                ],
            )
        elif role == "assistant":
            parts: list[dict[str, Any]] = [{"text": content}] if content else []
            for call in message.get("tool_calls") or []:
                try:
                    args = json.loads(call["arguments"] or "{}")
                except ValueError:
                    args = {}
                parts.append({"functionCall": {"name": call["name"], "args": args}})
            if parts:
                append("model", parts)
        else:
            append("user", [{"text": content}])
    return contents


class GeminiClient(LLMClient):
    """Gemini models; the key goes in a header, never in the URL (URLs end up in logs)."""

    provider = "gemini"

    async def _stream(
        self, *, system: str, messages: list[dict[str, Any]], tools: list[dict[str, Any]]
    ) -> AsyncIterator[StreamChunk]:
        body: dict[str, Any] = {
            "contents": to_gemini_contents(messages),
            "generationConfig": {"maxOutputTokens": self.settings.max_tokens},
        }
        if system:
            body["systemInstruction"] = {"parts": [{"text": system}]}
        if tools:
            body["tools"] = [
                {
                    "functionDeclarations": [
                        {
                            "name": t["function"]["name"],
                            "description": t["function"].get("description", ""),
                            "parameters": gemini_schema(t["function"].get("parameters") or {}),
                        }
                        for t in tools
                    ]
                }
            ]
        if self.settings.temperature is not None:
            body["generationConfig"]["temperature"] = self.settings.temperature
        model_url = model_path(self.settings.base_url, self.settings.model)
        url = f"{model_url}:streamGenerateContent?alt=sse"
        headers = {"x-goog-api-key": self.settings.api_key, "content-type": "application/json"}
        count = 0
        async for event in post_sse(
            provider=self.provider,
            url=url,
            headers=headers,
            body=body,
            timeout=self.settings.timeout,
        ):
            usage = event.get("usageMetadata") or {}
            for candidate in event.get("candidates") or []:
                for part in (candidate.get("content") or {}).get("parts") or []:
                    if part.get("text"):
                        yield StreamChunk(text=part["text"])
                    call = part.get("functionCall")
                    if call:
                        count += 1
                        yield StreamChunk(
                            tool_call=ToolCallDelta(
                                id=call.get("id") or f"gemini_call_{count}",
                                name=call.get("name", ""),
                                arguments=json.dumps(call.get("args") or {}),
                            )
                        )
                if candidate.get("finishReason"):
                    yield StreamChunk(finish_reason=str(candidate["finishReason"]))
            if usage:
                yield StreamChunk(
                    tokens_in=int(usage.get("promptTokenCount") or 0),
                    tokens_out=int(usage.get("candidatesTokenCount") or 0),
                )
