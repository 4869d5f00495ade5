"""Fixtures of the trust suite: the mesh test server and node helpers, reused as they are."""

from __future__ import annotations

import os

import pytest

from mesh.tests.conftest import grant, make_node  # noqa: F401  # fixtures
from mesh.tests.meshkit import mesh_address, mesh_settings  # noqa: F401  # fixtures
from tests.trust.figures import figures_path


@pytest.fixture(scope="session", autouse=True)
def _fresh_figures() -> None:
    """Each run of the suite writes its figures afresh (`make trust` runs it in one process;
    under xdist a worker must not wipe what another worker already recorded)."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        return
    figures_path().unlink(missing_ok=True)
