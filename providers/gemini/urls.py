"""The one rule for Gemini URLs, shared by verification, speech, transcription and chat."""

from __future__ import annotations

from urllib.parse import quote

DEFAULT_BASE_URL = "https://generativelanguage.googleapis.com"
API_VERSION = "v1beta"


def model_path(base_url: str, model: str) -> str:
    """`{base}/v1beta/models/{model}`, tolerating a `models/` prefix on the name and a base that
    already ends in the API version (the chat client's default used to)."""
    base = (base_url or DEFAULT_BASE_URL).rstrip("/").removesuffix(f"/{API_VERSION}")
    name = model.removeprefix("models/")
    return f"{base}/{API_VERSION}/models/{quote(name, safe='.-_')}"
