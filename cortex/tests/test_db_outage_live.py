"""A hub whose database is unreachable answers 503 `database_unavailable`, never a 500.

A real web process (`serve --no-grpc`) points at a PostgreSQL port where nothing listens: every
route that needs the database (the API, pages, the admin, a WebSocket) answers the outage in
the shared error shape with Retry-After (WebSockets: accepted, then closed with 1013), and
`/readyz` names the database as what is down.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from cortex.testing import wait_until

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
BEARER = {"Authorization": "Bearer ctx_" + "a" * 43}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def dead_db_hub(tmp_path_factory) -> Iterator[str]:  # type: ignore[no-untyped-def]
    tmp_path = tmp_path_factory.mktemp("dead-db")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "REDIS_URL"))}
    env.update(
        DJANGO_SETTINGS_MODULE="cortex.test_settings",
        DATABASE_URL=f"postgres://postgres@127.0.0.1:{_free_port()}/cortex",  # nothing listens
        CORTEX_DB_POOL_TIMEOUT="1",
        CORTEX_MEDIA_ROOT=str(tmp_path / "media"),
        PYTHONUNBUFFERED="1",
    )
    port = _free_port()
    log = open(tmp_path / "hub.log", "ab")  # noqa: SIM115  # closed with the process
    process = subprocess.Popen(  # noqa: S603  # fixed arguments
        [sys.executable, "manage.py", "serve", "--no-grpc", "--http", f"127.0.0.1:{port}"],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:

        def healthy() -> bool:
            assert process.poll() is None, (tmp_path / "hub.log").read_text()[-3000:]
            return requests.get(base + "/healthz", timeout=2).status_code == 200

        wait_until(healthy, timeout=60, ignore=(requests.RequestException,), message="no /healthz")
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()
    assert "Traceback" not in (tmp_path / "hub.log").read_text(errors="replace")


@pytest.mark.parametrize(
    ("method", "path", "extra"),
    [
        ("GET", "/api/v1/nodes/", {"headers": BEARER}),
        ("GET", "/api/v1/users/me/", {"cookies": {"sessionid": "x" * 32}}),
        ("POST", "/api/v1/auth/login/", {"json": {"email": "a@example.com", "password": "x"}}),
        ("GET", "/api/v1/tasks/00000000-0000-0000-0000-000000000001/?wait=5", {"headers": BEARER}),
        ("GET", "/console/", {"cookies": {"sessionid": "x" * 32}}),
        ("GET", "/admin/", {"cookies": {"sessionid": "x" * 32}}),
    ],
)
def test_every_route_answers_503_database_unavailable(dead_db_hub, method, path, extra):
    response = requests.request(method, dead_db_hub + path, timeout=30, **extra)
    assert response.status_code == 503, response.text[:500]
    assert response.json() == {
        "error": {
            "code": "database_unavailable",
            "message": "The database is unavailable; try again shortly.",
        }
    }
    assert response.headers["Retry-After"] == "5"


def test_readyz_names_the_database_and_metrics_still_answer(dead_db_hub):
    ready = requests.get(dead_db_hub + "/readyz", timeout=30)
    assert ready.status_code == 503
    assert ready.json() == {
        "status": "unavailable",
        "checks": {"database": False, "channel_layer": True},
        "down": ["database"],
    }
    assert ready.headers["Retry-After"] == "5"
    assert requests.get(dead_db_hub + "/healthz", timeout=10).status_code == 200
    scrape = requests.get(dead_db_hub + "/metrics", timeout=30)
    assert scrape.status_code == 200
    assert "cortex_database_up 0.0" in scrape.text


@pytest.mark.parametrize("query", ["", "?ticket=whatever"])
def test_a_websocket_closes_with_try_again_later(dead_db_hub, query):
    from websockets.exceptions import ConnectionClosed
    from websockets.sync.client import connect

    url = dead_db_hub.replace("http://", "ws://") + "/ws/me/" + query
    with (
        connect(
            url,
            origin=dead_db_hub,
            open_timeout=30,
            additional_headers={"Cookie": "sessionid=" + "x" * 32},
        ) as ws,
        pytest.raises(ConnectionClosed) as closed,
    ):
        ws.recv(timeout=30)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1013
