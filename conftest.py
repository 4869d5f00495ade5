"""Shared pytest fixtures: users, API clients, and the real test services (PostgreSQL, Redis)."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable

import pytest
from rest_framework.test import APIClient

PG_PORT = int(os.environ.get("CORTEX_TEST_PG_PORT", "55432"))
REDIS_PORT = int(os.environ.get("CORTEX_TEST_REDIS_PORT", "56379"))


def _port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(scope="session")
def postgres_url() -> str:
    """Base URL of the test PostgreSQL server that `make test` starts (scripts/services.sh)."""
    if not _port_open(PG_PORT):
        pytest.fail("PostgreSQL test server is not running: run `scripts/services.sh start`")
    return f"postgres://postgres@127.0.0.1:{PG_PORT}"


@pytest.fixture(scope="session")
def redis_url() -> str:
    """URL of the test Redis server that `make test` starts (scripts/services.sh)."""
    if not _port_open(REDIS_PORT):
        pytest.fail("Redis test server is not running: run `scripts/services.sh start`")
    return f"redis://127.0.0.1:{REDIS_PORT}/0"


@pytest.fixture
def free_port() -> Callable[[], int]:
    def _pick() -> int:
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            return int(sock.getsockname()[1])

    return _pick


@pytest.fixture
def make_user(db):  # type: ignore[no-untyped-def]
    from accounts.models import User

    counter = {"n": 0}

    def _make(email: str | None = None, *, password: str = "correct horse battery", **extra):  # type: ignore[no-untyped-def]
        counter["n"] += 1
        return User.objects.create_user(
            email=email or f"user{counter['n']}@example.com", password=password, **extra
        )

    return _make


@pytest.fixture
def user(make_user):  # type: ignore[no-untyped-def]
    return make_user("alice@example.com")


@pytest.fixture
def staff_user(make_user):  # type: ignore[no-untyped-def]
    return make_user("root@example.com", is_staff=True, is_superuser=True)


@pytest.fixture
def anon_client() -> APIClient:
    return APIClient()


@pytest.fixture
def user_client(user) -> APIClient:  # type: ignore[no-untyped-def]
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def staff_client(staff_user) -> APIClient:  # type: ignore[no-untyped-def]
    client = APIClient()
    client.force_authenticate(staff_user)
    return client
