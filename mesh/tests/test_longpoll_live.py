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
# After `LiveHub.seed` (root@, group "team"): node "away" (no agent: its tasks stay queued)
# granted to the team, and per user a queued task there and an API token; one process.
SETUP = """
from accounts.context import AuditContext
from accounts.services.tokens import token_create

away, _ = services.node_create(actor=admin, node_id="away", display_name="Away")
services.node_grant(actor=admin, node=away, group=team)
tasks, tokens = {}, {}
for name in ("ann", "bob", "cid", "dee", "eve"):
    member = User.objects.create_user(email=f"{name}@example.com", password="x-x-x-x-x-x")
    member.groups.add(team)
    task = services.task_dispatch(
        actor=member, node=away, kind="shell", payload={"command": "echo hi"}, timeout=30
    )
    tasks[name] = str(task.pk)
    _, tokens[name] = token_create(actor=None, user=member, name="cli",
                                   audit_context=AuditContext.command("create_api_token"))
print(json.dumps({"tasks": tasks, "tokens": tokens}))
"""


@pytest.fixture(scope="module")
def module_live_hub_env() -> dict[str, str]:
    return {
        "CORTEX_LONGPOLL_PER_USER": str(PER_USER),
        "CORTEX_LONGPOLL_PER_PROCESS": str(PER_PROCESS),
    }


@pytest.fixture(scope="module")
def hub(module_live_hub):  # type: ignore[no-untyped-def]
    """One hub with the caps for the module. Each test polls tasks of its own users (`eve` is
    the final-state test's), so neither sees the other's waits."""
    seeded = module_live_hub.seed(then=SETUP)
    module_live_hub.tasks, module_live_hub.tokens = seeded["tasks"], seeded["tokens"]
    return module_live_hub


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


def test_a_wait_ends_with_the_final_state(hub):
    headers = {"Authorization": f"Bearer {hub.tokens['eve']}"}
    task = hub.tasks["eve"]
    waited = requests.get(
        f"{hub.http_url}/api/v1/tasks/{task}/?wait=1", headers=headers, timeout=30
    )
    assert waited.status_code == 200 and waited.json()["status"] == "queued"
    sock = _open_wait(hub, "eve", wait=30)
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
