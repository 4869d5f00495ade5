"""Each provider client against a loopback server speaking that provider's streaming protocol."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from providers.llm import LLMError, LLMSettings
from providers.registry import registry
from providers.tests.conftest import API_KEY
from providers.tests.llm_server import ScriptedLLM, Step, openai_text, openai_tool_call

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "echo_test",
            "description": "Echo.",
            "parameters": {
                "type": "object",
                "properties": {"text": {"type": "string"}},
                "additionalProperties": False,
            },
        },
    }
]
HISTORY: list[dict[str, Any]] = [
    {"role": "user", "content": "hi"},
    {
        "role": "assistant",
        "content": "calling",
        "tool_calls": [{"id": "t0", "name": "echo_test", "arguments": '{"text": "a"}'}],
    },
    {"role": "tool", "tool_call_id": "t0", "name": "echo_test", "content": "echo: a"},
]


async def _collect(settings: LLMSettings) -> dict[str, Any]:
    text, calls, usage, finish = [], [], [0, 0], []
    async for chunk in registry.chat_client(settings).stream(
        system="be brief", messages=HISTORY, tools=TOOLS
    ):
        text.append(chunk.text)
        if chunk.tool_call:
            calls.append((chunk.tool_call.id, chunk.tool_call.name, chunk.tool_call.arguments))
        if chunk.tokens_in is not None:
            usage[0] = chunk.tokens_in
        if chunk.tokens_out is not None:
            usage[1] = chunk.tokens_out
        if chunk.finish_reason:
            finish.append(chunk.finish_reason)
    return {"text": "".join(text), "calls": calls, "usage": tuple(usage), "finish": finish}


def _settings(provider: str, server: ScriptedLLM, **extra: Any) -> LLMSettings:
    base = server.url + "/v1" if provider == "openai_compatible" else server.url
    return LLMSettings(
        provider=provider, model="m-1", api_key=API_KEY, base_url=base, timeout=2.0, **extra
    )


async def test_openai_text_and_tool_calls(llm_server):
    llm_server.add(openai_tool_call([("c1", "echo_test", '{"text": "b"}')], text="ok "))
    result = await _collect(_settings("openai_compatible", llm_server))
    assert result == {
        "text": "ok ",
        "calls": [("c1", "echo_test", '{"text": "b"}')],
        "usage": (20, 5),
        "finish": ["tool_calls"],
    }
    body = llm_server.requests[0]["body"]
    assert body["messages"][0] == {"role": "system", "content": "be brief"}
    assert body["messages"][2]["tool_calls"][0]["id"] == "t0"
    assert body["messages"][3] == {"role": "tool", "tool_call_id": "t0", "content": "echo: a"}


async def test_openai_honours_retry_after(llm_server):
    llm_server.add(Step("status", status=429, headers={"Retry-After": "1"}))
    llm_server.add(Step("status", status=503))
    llm_server.add(openai_text(["fine"]))
    started = time.monotonic()
    result = await _collect(_settings("openai_compatible", llm_server))
    assert result["text"] == "fine"
    assert len(llm_server.requests) == 3
    assert time.monotonic() - started >= 1.0


async def test_openai_gives_up_after_two_retries(llm_server):
    for _ in range(3):
        llm_server.add(Step("status", status=429, headers={"Retry-After": "0"}))
    with pytest.raises(LLMError) as caught:
        await _collect(_settings("openai_compatible", llm_server))
    assert caught.value.code == "rate_limited"
    assert len(llm_server.requests) == 3


async def test_openai_context_too_long(llm_server):
    llm_server.add(
        Step(
            "status",
            status=400,
            body={"error": {"code": "context_length_exceeded", "message": "too long"}},
        )
    )
    with pytest.raises(LLMError) as caught:
        await _collect(_settings("openai_compatible", llm_server))
    assert caught.value.code == "context_too_long"
    assert len(llm_server.requests) == 1


async def test_anthropic_stream_with_tool_use(llm_server):
    events = [
        {"type": "message_start", "message": {"usage": {"input_tokens": 12, "output_tokens": 1}}},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hi "}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "you"}},
        {"type": "content_block_stop", "index": 0},
        {
            "type": "content_block_start",
            "index": 1,
            "content_block": {
                "type": "tool_use",
                "id": "toolu_1",
                "name": "echo_test",
                "input": {},
            },
        },
        {
            "type": "content_block_delta",
            "index": 1,
            "delta": {"type": "input_json_delta", "partial_json": '{"text": '},
        },
        {
            "type": "content_block_delta",
            "index": 1,
            "delta": {"type": "input_json_delta", "partial_json": '"c"}'},
        },
        {"type": "content_block_stop", "index": 1},
        {
            "type": "message_delta",
            "delta": {"stop_reason": "tool_use"},
            "usage": {"output_tokens": 9},
        },
        {"type": "message_stop"},
    ]
    llm_server.add(Step("sse", events=events))
    result = await _collect(_settings("anthropic", llm_server))
    assert result == {
        "text": "Hi you",
        "calls": [("toolu_1", "echo_test", '{"text": "c"}')],
        "usage": (12, 9),
        "finish": ["tool_use"],
    }
    request = llm_server.requests[0]
    headers = {k.lower(): v for k, v in request["headers"].items()}
    assert request["path"] == "/v1/messages"
    assert headers["x-api-key"] == API_KEY
    assert headers["anthropic-version"] == "2023-06-01"
    body = request["body"]
    assert body["system"] == "be brief"
    assert body["stream"] is True
    assert body["tools"][0]["input_schema"]["properties"] == {"text": {"type": "string"}}
    assert body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "hi"}]},
        {
            "role": "assistant",
            "content": [
                {"type": "text", "text": "calling"},
                {"type": "tool_use", "id": "t0", "name": "echo_test", "input": {"text": "a"}},
            ],
        },
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": "t0", "content": "echo: a"}],
        },
    ]


async def test_anthropic_overloaded_maps_to_unavailable(llm_server):
    for _ in range(3):
        llm_server.add(Step("status", status=529, headers={"retry-after": "0"}))
    with pytest.raises(LLMError) as caught:
        await _collect(_settings("anthropic", llm_server))
    assert caught.value.code == "provider_unavailable"
    assert caught.value.provider == "anthropic"
    assert API_KEY not in str(caught.value)


async def test_gemini_stream_with_function_call(llm_server):
    events = [
        {"candidates": [{"content": {"role": "model", "parts": [{"text": "Look"}]}}]},
        {
            "candidates": [
                {
                    "content": {
                        "role": "model",
                        "parts": [{"functionCall": {"name": "echo_test", "args": {"text": "d"}}}],
                    },
                    "finishReason": "STOP",
                }
            ],
            "usageMetadata": {"promptTokenCount": 8, "candidatesTokenCount": 4},
        },
    ]
    llm_server.add(Step("sse", events=events))
    result = await _collect(_settings("gemini", llm_server))
    assert result["text"] == "Look"
    assert [(name, json.loads(args)) for _, name, args in result["calls"]] == [
        ("echo_test", {"text": "d"})
    ]
    assert result["usage"] == (8, 4)
    request = llm_server.requests[0]
    assert request["path"] == "/v1beta/models/m-1:streamGenerateContent?alt=sse"
    assert API_KEY not in request["path"]
    headers = {k.lower(): v for k, v in request["headers"].items()}
    assert headers["x-goog-api-key"] == API_KEY
    body = request["body"]
    assert body["systemInstruction"] == {"parts": [{"text": "be brief"}]}
    declaration = body["tools"][0]["functionDeclarations"][0]
    assert declaration["parameters"] == {
        "type": "object",
        "properties": {"text": {"type": "string"}},
    }
    assert body["contents"] == [
        {"role": "user", "parts": [{"text": "hi"}]},
        {
            "role": "model",
            "parts": [
                {"text": "calling"},
                {"functionCall": {"name": "echo_test", "args": {"text": "a"}}},
            ],
        },
        {
            "role": "user",
            "parts": [
                {"functionResponse": {"name": "echo_test", "response": {"content": "echo: a"}}}
            ],
        },
    ]


async def test_gemini_bad_key(llm_server):
    llm_server.add(Step("status", status=403))
    with pytest.raises(LLMError) as caught:
        await _collect(_settings("gemini", llm_server))
    assert caught.value.code == "invalid_key"
    assert len(llm_server.requests) == 1


async def test_unknown_backend():
    with pytest.raises(LLMError) as caught:
        registry.chat_client(LLMSettings(provider="nope", model="m"))
    assert caught.value.code == "provider_unavailable"


async def test_no_retry_once_output_was_streamed(llm_server):
    events = [
        {
            "id": "x",
            "object": "chat.completion.chunk",
            "created": 1,
            "model": "m",
            "choices": [{"index": 0, "delta": {"content": "partial"}, "finish_reason": None}],
        },
        {"error": {"message": "upstream exploded"}},
    ]
    llm_server.add(Step("sse", events=events))
    llm_server.add(openai_text(["must not be fetched"]))
    seen: list[str] = []
    with pytest.raises(LLMError) as caught:
        async for chunk in registry.chat_client(_settings("openai_compatible", llm_server)).stream(
            system="", messages=[{"role": "user", "content": "x"}], tools=[]
        ):
            seen.append(chunk.text)
    assert caught.value.code == "provider_unavailable"
    assert "".join(seen) == "partial"
    assert len(llm_server.requests) == 1


@pytest.mark.parametrize(
    "base_url",
    [
        "",
        "https://generativelanguage.googleapis.com",
        "https://generativelanguage.googleapis.com/",
        "https://generativelanguage.googleapis.com/v1beta",
    ],
)
def test_gemini_chat_and_verify_share_one_url_rule(base_url: str) -> None:
    """The saved default base (the API root) and the old chat default (…/v1beta) reach the same
    model URL: chat used to drop `/v1beta` when the parameter default was saved."""
    from providers.gemini.urls import model_path

    expected = "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.0-flash"
    assert model_path(base_url, "models/gemini-2.0-flash") == expected
