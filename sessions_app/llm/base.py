"""The LLM client interface every provider backend implements: one streamed completion.

Messages use one neutral shape (OpenAI-like dicts) that each backend converts:
`{"role": "user"|"assistant"|"tool", "content": str, "tool_calls": [{"id", "name",
"arguments": str}], "tool_call_id": str, "name": str}`. The system prompt travels apart.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar, Literal

from django.utils import timezone

logger = logging.getLogger("cortex.sessions.llm")

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


def error_for_status(provider: str, status: int, body: str, headers: Any | None = None) -> LLMError:
    """Map an HTTP failure to an error code; the body is read only to spot context overflow."""
    retry_after = retry_after_seconds(headers)
    lowered = (body or "").lower()
    if status in (401, 403):
        return LLMError(
            "invalid_key", f"{provider} refused the API key (HTTP {status}).", provider=provider
        )
    if status == 429:
        return LLMError(
            "rate_limited",
            f"{provider} is rate limiting requests (HTTP 429).",
            provider=provider,
            retry_after=retry_after,
        )
    if status == 413 or any(
        hint in lowered
        for hint in ("context_length", "context length", "too many tokens", "prompt is too long")
    ):
        return LLMError(
            "context_too_long",
            f"The conversation is too long for the {provider} model (HTTP {status}).",
            provider=provider,
        )
    if status >= 500:
        return LLMError(
            "provider_unavailable",
            f"{provider} is unavailable (HTTP {status}).",
            provider=provider,
            retry_after=retry_after,
        )
    return LLMError(
        "provider_rejected", f"{provider} rejected the request (HTTP {status}).", provider=provider
    )


def blocked_error(exc: BaseException, provider: str) -> LLMError | None:
    """The SSRF guard's refusal anywhere in an exception's chain, as a non-retryable error."""
    from preferences.errors import BlockedAddress

    seen: set[int] = set()
    link: BaseException | None = exc
    while link is not None and id(link) not in seen:
        seen.add(id(link))
        if isinstance(link, BlockedAddress):
            return LLMError("blocked_address", f"{provider}: {link.message}", provider=provider)
        link = link.__cause__ or link.__context__
    return None


def retry_after_seconds(headers: Any | None) -> float | None:
    """`Retry-After` as seconds (delta or HTTP date), or None."""
    if not headers:
        return None
    value = headers.get("retry-after") or headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - timezone.now()).total_seconds())


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
