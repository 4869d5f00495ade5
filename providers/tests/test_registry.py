"""One registry style: every provider package is discovered once, and each backend's class
says what it can do (chat, speech, transcription)."""

from __future__ import annotations

import pkgutil
from pathlib import Path

import pytest

import providers
from providers.base import ChatBackend, SpeechBackend, TranscriptionBackend
from providers.llm import LLMClient, LLMSettings
from providers.registry import DEFAULT_PROVIDERS, provider_packages, registry

CAPABILITY = {"llm": ChatBackend, "tts": SpeechBackend, "stt": TranscriptionBackend}


def test_every_provider_package_is_discovered():
    packages = {
        info.name
        for info in pkgutil.iter_modules(providers.__path__)
        if info.ispkg and (Path(providers.__path__[0]) / info.name / "backends.py").exists()
    }
    assert packages == {"openai_compatible", "anthropic", "gemini", "local"}
    assert provider_packages() == sorted(f"providers.{name}.backends" for name in packages)


def test_backend_ids_are_unchanged():
    assert {kind: registry.ids(kind) for kind in ("llm", "tts", "stt")} == {
        "llm": ["anthropic", "gemini", "openai_compatible"],
        "tts": ["espeak", "gemini", "openai_compatible"],
        "stt": ["gemini", "openai_compatible", "pocketsphinx"],
    }
    assert all(registry.has(kind, i) for kind, i in DEFAULT_PROVIDERS.items() if i)


@pytest.mark.parametrize("backend", registry.all(), ids=lambda b: f"{b.kind}/{b.id}")
def test_each_backend_declares_its_capability_and_lives_in_its_package(backend):
    assert isinstance(backend, CAPABILITY[backend.kind])
    package = type(backend).__module__.split(".")[1]
    if isinstance(backend, ChatBackend):
        assert issubclass(backend.client_class, LLMClient)
        assert backend.client_class.__module__.split(".")[1] == package
        client = registry.chat_client(LLMSettings(provider=backend.id, model="m"))
        assert type(client) is backend.client_class
