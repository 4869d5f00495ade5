"""Fixtures for voice tests: a clean throttle cache and helpers to post audio."""

from __future__ import annotations

import pytest
from django.core.cache import cache


@pytest.fixture(autouse=True)
def _fresh_throttles():  # type: ignore[no-untyped-def]
    """Throttle counters live in the cache; user ids repeat across tests."""
    cache.clear()
    yield
    cache.clear()
