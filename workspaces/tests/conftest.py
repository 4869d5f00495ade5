"""Workspace test fixtures: a mirror folder of the test's own."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture(autouse=True)
def mirror_root(settings: Any, tmp_path: Any) -> Any:
    settings.WORKSPACE_ROOT = tmp_path / "mirror"
    return settings.WORKSPACE_ROOT
