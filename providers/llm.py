"""The chat client interface every llm provider implements: one streamed completion.

Each provider package's chat.py subclasses LLMClient; its ChatBackend names the class, and the
turn loop gets a client from `providers.registry.registry.chat_client(settings)`. Failures are
classified by providers.errors and presented as LLMError.

Messages use one neutral shape (OpenAI-like dicts) that each backend converts:
`{"role": "user"|"assistant"|"tool", "content": str, "tool_calls": [{"id", "name",
"arguments": str}], "tool_call_id": str, "name": str}`. The system prompt travels apart.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

import httpx

from cortex import errors
from providers.errors import (
    BlockedAddress,
    ProviderCallFailed,
    failure_for_exception,
    failure_for_status,
)
from providers.http import httpx_async_client

logger = logging.getLogger("cortex.sessions.llm")  # the name operators already filter on

ErrorCode = Literal[
    "provider_unavailable",
    "invalid_key",
    "context_too_long",
    "rate_limited",
    "provider_timeout",
    "provider_rejected",
    "blocked_address",
]


@dataclass(frozen=True)
class LLMSettings:
    """Where and how to call a model; `api_key` is secret and never rendered or logged."""

    provider: str
    model: str
    api_key: str = field(default="", repr=False)
    base_url: str = ""
    timeout: float = 60.0
    max_tokens: int = 4096
    temperature: float | None = None


@dataclass
class ToolCallDelta:
    """A finished tool call from the model; `arguments` is the raw JSON text it produced."""

    id: str
    name: str
    arguments: str


@dataclass
class StreamChunk:
    """One piece of a streamed answer: text, a complete tool call, or usage numbers."""

    text: str = ""
    tool_call: ToolCallDelta | None = None
    tokens_in: int | None = None
    tokens_out: int | None = None
    finish_reason: str = ""


class LLMError(Exception):
    """A provider failure with a stable code; the message names the provider, never a key."""

    def __init__(
        self, code: ErrorCode, message: str, *, provider: str, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.provider = provider
        self.retry_after = retry_after

    @property
    def retryable(self) -> bool:
        return self.code in ("rate_limited", "provider_unavailable")

    @classmethod
    def from_error(cls, error: errors.CortexError, provider: str) -> LLMError:
        """Present a classified provider failure (providers.errors) to the turn loop."""
        if isinstance(error, BlockedAddress):
            return cls("blocked_address", f"{provider}: {error.message}", provider=provider)
        if isinstance(error, ProviderCallFailed):
            return cls(
                error.code,  # type: ignore[arg-type]  # ProviderCallFailed codes are ErrorCodes
                error.message,
                provider=provider,
                retry_after=error.retry_hint,
            )
        return cls("provider_unavailable", f"{provider} could not be reached.", provider=provider)

    @classmethod
    def from_exception(
        cls, exc: BaseException, provider: str, *, fallback: str = "could not be reached"
    ) -> LLMError:
        """Classify any failure of a chat call with the one mapping in providers.errors."""
        if isinstance(exc, LLMError):
            return exc
        failure = failure_for_exception(exc, provider, chat=True, fallback=fallback)
        return cls.from_error(failure, provider)


class LLMClient:
    """One provider backend; subclasses implement `_stream` (a single attempt)."""

    provider: ClassVar[str] = ""
    #: Retries after the first attempt on 429 and 5xx (only before any output was produced).
    max_retries: ClassVar[int] = 2
    backoff_base: ClassVar[float] = 0.5
    backoff_cap: ClassVar[float] = 20.0

    def __init__(self, settings: LLMSettings) -> None:
        self.settings = settings

    def _stream(
        self, *, system: str, messages: list[dict[str, Any]], tools: list[dict[str, Any]]
    ) -> AsyncIterator[StreamChunk]:
        raise NotImplementedError

    def backoff(self, attempt: int, retry_after: float | None) -> float:
        """Jittered exponential backoff; a server's Retry-After wins (capped)."""
        if retry_after is not None:
            return min(retry_after, self.backoff_cap)
        base = self.backoff_base * (2**attempt)
        return min(self.backoff_cap, base * random.uniform(0.8, 1.2))

    async def stream(
        self, *, system: str, messages: list[dict[str, Any]], tools: list[dict[str, Any]]
    ) -> AsyncIterator[StreamChunk]:
        """Stream one completion, retrying 429/5xx at most `max_retries` times before output.

        Once a chunk has been yielded nothing is retried: the caller may already have shown
        it, and a tool call the model produced must not be produced (and run) twice.
        """
        attempt = 0
        while True:
            produced = False
            try:
                async for chunk in self._stream(system=system, messages=messages, tools=tools):
                    produced = True
                    yield chunk
                return
            except LLMError as exc:
                if produced or not exc.retryable or attempt >= self.max_retries:
                    raise
                delay = self.backoff(attempt, exc.retry_after)
                logger.info(
                    "%s answered %s; retry %s in %.2fs", self.provider, exc.code, attempt + 1, delay
                )
                attempt += 1
                await asyncio.sleep(delay)


async def sse_data(lines: AsyncIterator[str]) -> AsyncIterator[str]:
    """The `data:` payloads of a server-sent-event stream, one per event."""
    data: list[str] = []
    async for line in lines:
        if not line.strip():
            if data:
                yield "\n".join(data)
                data = []
            continue
        if line.startswith("data:"):
            data.append(line[5:].lstrip())
    if data:
        yield "\n".join(data)


async def post_sse(
    *, provider: str, url: str, headers: dict[str, str], body: dict[str, Any], timeout: float
) -> AsyncIterator[dict[str, Any]]:
    """POST `body` with the SSRF-guarded client and yield each SSE `data:` payload as JSON."""
    limits = httpx.Timeout(timeout, connect=min(10.0, timeout))
    try:
        async with (
            httpx_async_client(limits) as client,
            client.stream("POST", url, headers=headers, json=body) as response,
        ):
            if response.status_code >= 400:
                raw = (await response.aread())[:4096].decode("utf-8", "replace")
                failure = failure_for_status(
                    provider, response.status_code, body=raw, headers=response.headers, chat=True
                )
                raise LLMError.from_error(failure, provider)
            async for data in sse_data(response.aiter_lines()):
                if data.strip() == "[DONE]":
                    return
                try:
                    yield json.loads(data)
                except ValueError as exc:
                    raise LLMError(
                        "provider_unavailable",
                        f"{provider} sent a malformed event.",
                        provider=provider,
                    ) from exc
    except LLMError:
        raise
    except (BlockedAddress, httpx.HTTPError) as exc:
        raise LLMError.from_exception(exc, provider) from exc
