"""Fixtures for providers tests: a scripted LLM server, and the preferences layer writer.

Provider calls are made the way users make them, through a preference layer written by the
preferences service, so the layer fixtures are the preferences app's own (imported, not copied).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from preferences.tests.conftest import group_eng, set_layer  # noqa: F401  # fixtures
from providers.tests.llm_server import ScriptedLLM

API_KEY = "sk-test-very-secret-key-1234"


@pytest.fixture
def llm_server() -> Iterator[ScriptedLLM]:
    server = ScriptedLLM().start()
    yield server
    server.close()
