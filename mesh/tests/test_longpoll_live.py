"""Long polls against a real hub process: no thread each, capped per user and per process."""

from __future__ import annotations

import json
import select
import socket
from pathlib import Path
from typing import Any

import pytest
import requests

from cortex.testing import wait_until

pytestmark = pytest.mark.slow

PER_USER = 6
PER_PROCESS = 14
SETUP = """
import json
from django.contrib.auth.models import Group
from accounts.models import User
from mesh import services

admin = User.objects.create_superuser(email="root@example.com", password="x-x-x-x-x-x")
team = Group.objects.create(name="team")
node, _ = services.node_create(actor=admin, node_id="away", display_name="Away")
services.node_grant(actor=admin, node=node, group=team)
tasks = {}
for name in ("ann", "bob", "cid", "dee"):
    user = User.objects.create_user(email=f"{name}@example.com", password="x-x-x-x-x-x")
    user.groups.add(team)
    task = services.task_dispatch(
        actor=user, node=node, kind="shell", payload={"command": "echo hi"}, timeout=30
    )
    tasks[name] = str(task.pk)
print(json.dumps(tasks))
"""


@pytest.fixture
def hub(live_hub):  # type: ignore[no-untyped-def]
    live_hub.stop()
    live_hub.env["CORTEX_LONGPOLL_PER_USER"] = str(PER_USER)
    live_hub.env["CORTEX_LONGPOLL_PER_PROCESS"] = str(PER_PROCESS)
    live_hub.start()
    out = live_hub.manage("shell", "-c", SETUP)
    live_hub.tasks = json.loads(out.strip().splitlines()[-1])
    live_hub.tokens = {
        name: live_hub.manage("create_api_token", f"{name}@example.com").strip()
        for name in live_hub.tasks
    }
    return live_hub


def _threads(hub: Any) -> int:
    status = Path(f"/proc/{hub.process.pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("Threads")))


def _open_wait(hub: Any, name: str, wait: int = 60) -> socket.socket:
    """Send `GET /api/v1/tasks/{id}/?wait=` and leave the answer unread."""
    host, port = hub.http_url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=30)
    sock.sendall(
        (
            f"GET /api/v1/tasks/{hub.tasks[name]}/?wait={wait} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            f"Authorization: Bearer {hub.tokens[name]}\r\nConnection: close\r\n\r\n"
        ).encode()
    )
    return sock


def _answer(sock: socket.socket, within: float) -> tuple[int, dict[str, str], Any] | None:
    """The response if one arrives within `within` seconds, else None (still waiting)."""
    readable, _, _ = select.select([sock], [], [], within)
    if not readable:
        return None
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, v in (line.split(":", 1) for line in lines[1:])}
    return int(lines[0].split()[1]), headers, json.loads(body)


def _refused_once_full(hub: Any, name: str, held: list[socket.socket]) -> tuple[int, dict, Any]:  # type: ignore[type-arg]
    """Open waits for `name` until one is refused; the ones still waiting join `held`."""
    for _ in range(PER_PROCESS + 2):
        sock = _open_wait(hub, name)
        answer = _answer(sock, within=10)
        if answer is None:
            held.append(sock)
            continue
        sock.close()
        return answer
    raise AssertionError("no wait was refused")


def _settle(held: list[socket.socket]) -> list[socket.socket]:
    """The waits still open; any that was answered meanwhile must have been refused (a race
    between the requests sent at once decides which of them is the one too many)."""
    open_ones = []
    for sock in held:
        answer = _answer(sock, within=0)
        if answer is None:
            open_ones.append(sock)
        else:
            assert answer[0] == 429, answer
            sock.close()
    return open_ones


def test_waits_are_capped_per_user_and_per_process_and_hold_no_thread_each(hub):
    # Warm up: one complete poll, so the pools a first request starts exist already.
    warm = requests.get(
        f"{hub.http_url}/api/v1/tasks/{hub.tasks['dee']}/?wait=0.2",
        headers={"Authorization": f"Bearer {hub.tokens['dee']}"},
        timeout=30,
    )
    assert warm.status_code == 200 and warm.json()["status"] == "queued"
    baseline = _threads(hub)
    held: list[socket.socket] = []
    try:
        held.extend(_open_wait(hub, "ann") for _ in range(PER_USER))
        status, headers, body = _refused_once_full(hub, "ann", held)
        assert (status, body["error"]["code"]) == (429, "too_many_waits")
        assert int(headers["retry-after"]) >= 1
        held = _settle(held)
        assert len(held) == PER_USER

        # Another user still waits, up to the process cap; past it everybody is refused.
        held.extend(_open_wait(hub, "bob") for _ in range(PER_USER))
        status, headers, body = _refused_once_full(hub, "cid", held)
        assert (status, body["error"]["code"]) == (429, "too_many_waits")
        assert "retry-after" in headers
        held = _settle(held)
        assert len(held) == PER_PROCESS

        # While all of them wait, another user's plain request answers.
        plain = requests.get(
            f"{hub.http_url}/api/v1/tasks/{hub.tasks['dee']}/",
            headers={"Authorization": f"Bearer {hub.tokens['dee']}"},
            timeout=30,
        )
        assert plain.status_code == 200
        # No thread per wait: with PER_PROCESS waits held (for 60 s), the threads that served
        # the requests end (asgiref joins them in the background) and far fewer remain.
        wait_until(
            lambda: _threads(hub) - baseline < PER_PROCESS // 2,
            timeout=20,
            message=lambda: f"threads: baseline {baseline}, now {_threads(hub)}",
        )
        assert all(_answer(sock, within=0) is None for sock in held)
    finally:
        for sock in held:
            sock.close()

    # Waits whose client left give their slots back: a new one waits (not refused).
    def waited() -> Any:
        sock = _open_wait(hub, "ann", wait=1)
        answer = _answer(sock, within=30)
        sock.close()
        return answer if answer is not None and answer[0] == 200 else None

    answer = wait_until(waited, timeout=60, interval=0)
    assert answer[2]["status"] == "queued"
    assert "Traceback" not in hub.log()


def test_a_wait_ends_with_the_final_state(hub):
    headers = {"Authorization": f"Bearer {hub.tokens['bob']}"}
    task = hub.tasks["bob"]
    waited = requests.get(
        f"{hub.http_url}/api/v1/tasks/{task}/?wait=1", headers=headers, timeout=30
    )
    assert waited.status_code == 200 and waited.json()["status"] == "queued"
    sock = _open_wait(hub, "bob", wait=30)
    try:
        cancelled = requests.post(
            f"{hub.http_url}/api/v1/tasks/{task}/cancel/", headers=headers, json={}, timeout=30
        )
        assert cancelled.status_code == 200, cancelled.text
        answer = _answer(sock, within=30)
    finally:
        sock.close()
    assert answer is not None
    assert answer[0] == 200 and answer[2]["status"] == "cancelled"
