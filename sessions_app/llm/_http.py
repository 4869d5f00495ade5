"""A streamed JSON-over-SSE POST with the SSRF-guarded httpx client, failures mapped to codes."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx

from preferences.backends.http import httpx_async_client
from preferences.errors import BlockedAddress
from sessions_app.llm.base import LLMError, error_for_status, sse_data


async def post_sse(
    *, provider: str, url: str, headers: dict[str, str], body: dict[str, Any], timeout: float
) -> AsyncIterator[dict[str, Any]]:
    """POST `body` and yield each SSE `data:` payload parsed as JSON."""
    limits = httpx.Timeout(timeout, connect=min(10.0, timeout))
    try:
        async with (
            httpx_async_client(limits) as client,
            client.stream("POST", url, headers=headers, json=body) as response,
        ):
            if response.status_code >= 400:
                raw = (await response.aread())[:4096].decode("utf-8", "replace")
                raise error_for_status(provider, response.status_code, raw, response.headers)
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
    except BlockedAddress as exc:
        raise LLMError("blocked_address", f"{provider}: {exc.message}", provider=provider) from None
    except httpx.TimeoutException as exc:
        raise LLMError(
            "provider_timeout", f"{provider} did not answer in time.", provider=provider
        ) from exc
    except httpx.HTTPError as exc:
        raise LLMError(
            "provider_unavailable", f"{provider} could not be reached.", provider=provider
        ) from exc
