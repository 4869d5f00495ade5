"""`/metrics`: who may scrape (fail closed), and what a live hub reports after real work."""

from __future__ import annotations

import re

import pytest
import requests

from cortex.testing import wait_until

TOKEN = "metrics-token-for-tests-0123456789"  # noqa: S105  # a test value


def _value(text: str, name: str, **labels: str) -> float | None:
    """The sample `name{labels}` in exposition text (labels in any order), else None."""
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        match = re.fullmatch(r"([a-zA-Z_:][\w:]*)(\{(.*)\})? (\S+)", line)
        if not match or match.group(1) != name:
            continue
        found = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', match.group(3) or ""))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(match.group(4))
    return None


# --- who may scrape -------------------------------------------------------------------------


@pytest.mark.django_db
def test_loopback_may_scrape_when_nothing_is_configured(client, settings):
    settings.METRICS_TOKEN, settings.METRICS_ALLOW = "", []
    response = client.get("/metrics")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    text = response.content.decode()
    assert _value(text, "cortex_database_up") == 1.0
    assert _value(text, "cortex_nodes", status="online") == 0.0
    assert _value(text, "cortex_approvals_waiting") == 0.0


@pytest.mark.django_db
@pytest.mark.parametrize("peer", ["10.0.0.7", "192.168.1.2", "::ffff:8.8.8.8", "not-an-ip", ""])
def test_other_peers_are_refused_when_nothing_is_configured(client, settings, peer):
    settings.METRICS_TOKEN, settings.METRICS_ALLOW = "", []
    response = client.get("/metrics", REMOTE_ADDR=peer)
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "permission_denied"
    assert b"cortex_" not in response.content


@pytest.mark.django_db
def test_forwarded_for_loopback_from_an_untrusted_peer_is_refused(client, settings):
    settings.METRICS_TOKEN, settings.METRICS_ALLOW = "", []
    response = client.get("/metrics", REMOTE_ADDR="203.0.113.5", HTTP_X_FORWARDED_FOR="127.0.0.1")
    assert response.status_code == 403


@pytest.mark.django_db
@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", "Bearer wrong", f"Basic {TOKEN}", f"Bearer {TOKEN}x", TOKEN],
)
def test_token_set_refuses_anything_but_the_token(client, settings, authorization):
    settings.METRICS_TOKEN, settings.METRICS_ALLOW = TOKEN, []
    extra = {} if authorization is None else {"HTTP_AUTHORIZATION": authorization}
    response = client.get("/metrics", **extra)  # from loopback: the token is required anyway
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert response.json()["error"]["code"] == "not_authenticated"
    assert b"cortex_" not in response.content


@pytest.mark.django_db
def test_token_admits_from_anywhere(client, settings):
    settings.METRICS_TOKEN, settings.METRICS_ALLOW = TOKEN, []
    response = client.get(
        "/metrics", REMOTE_ADDR="198.51.100.9", HTTP_AUTHORIZATION=f"Bearer {TOKEN}"
    )
    assert response.status_code == 200
    assert _value(response.content.decode(), "cortex_database_up") == 1.0


@pytest.mark.django_db
def test_allow_list_admits_its_networks_only(client, settings):
    settings.METRICS_TOKEN, settings.METRICS_ALLOW = "", ["10.1.0.0/16"]
    assert client.get("/metrics", REMOTE_ADDR="10.1.2.3").status_code == 200
    assert client.get("/metrics", REMOTE_ADDR="10.2.0.1").status_code == 403
    # Listing networks replaces the loopback default.
    assert client.get("/metrics").status_code == 403


@pytest.mark.django_db
def test_metrics_refuses_other_methods(client, settings):
    settings.METRICS_TOKEN, settings.METRICS_ALLOW = "", []
    assert client.post("/metrics").status_code == 405


# --- a live hub ------------------------------------------------------------------------------


def _scrape(url: str, token: str | None) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.get(url, headers=headers, timeout=30)


@pytest.mark.slow
@pytest.mark.live_hub_env(CORTEX_METRICS_TOKEN=TOKEN)
def test_live_metrics_reflect_a_dispatched_task_and_a_connected_node(live_hub, tmp_path):
    seeded = live_hub.seed(token=True)
    invite, token = seeded["invite"], seeded["token"]
    agent_root = tmp_path / "agent"
    agent_root.mkdir()
    agent = live_hub.start_agent(node_id="live", invite=invite, root=agent_root)
    url = live_hub.http_url + "/metrics"
    try:
        # Refused without the token, from loopback too: no metric leaks.
        refused = _scrape(url, None)
        assert refused.status_code == 401
        assert "cortex_" not in refused.text

        def online() -> str | None:
            text = _scrape(url, TOKEN).text
            return text if _value(text, "cortex_mesh_streams_connected") == 1.0 else None

        text = wait_until(
            online, timeout=60, message=lambda: (agent_root / "agent.log").read_text()[-2000:]
        )
        api = {"Authorization": f"Bearer {token}"}
        created = requests.post(
            live_hub.http_url + "/api/v1/nodes/live/tasks/",
            json={"command": "echo metrics-seen", "timeout": 30},
            headers=api,
            timeout=30,
        )
        assert created.status_code == 201, created.text
        task_id = created.json()["id"]
        done = requests.get(
            f"{live_hub.http_url}/api/v1/tasks/{task_id}/?wait=30", headers=api, timeout=60
        )
        assert done.json()["status"] == "succeeded", done.text

        text = _scrape(url, TOKEN).text
        assert _value(text, "cortex_tasks", status="succeeded", kind="shell") == 1.0
        assert _value(text, "cortex_tasks", status="queued", kind="shell") == 0.0
        up = [_value(text, "cortex_nodes", status=status) for status in ("online", "busy")]
        assert sum(v or 0.0 for v in up) == 1.0
        assert _value(text, "cortex_nodes", status="offline") == 0.0
        assert _value(text, "cortex_task_dispatch_to_start_seconds_count", kind="shell") == 1.0
        assert (
            _value(text, "cortex_task_run_seconds_count", kind="shell", status="succeeded") == 1.0
        )
        assert _value(text, "cortex_task_output_bytes_total", stream="stdout") == float(
            len(b"metrics-seen\n")
        )
        assert _value(text, "cortex_mesh_streams_connected") == 1.0
        assert _value(text, "cortex_database_up") == 1.0

        # An open console WebSocket is counted while it is open.
        from websockets.sync.client import connect

        ticket = requests.post(
            live_hub.http_url + "/api/v1/ws-ticket/", headers=api, timeout=30
        ).json()["ticket"]
        ws_url = live_hub.http_url.replace("http://", "ws://") + f"/ws/nodes/live/?ticket={ticket}"
        with connect(ws_url, origin=live_hub.http_url, open_timeout=30) as ws:
            ws.recv(timeout=30)  # the first frame: the socket is open and counted
            text = _scrape(url, TOKEN).text
            assert _value(text, "cortex_websocket_connections", route="NodeConsumer") == 1.0

        def closed() -> bool:
            text = _scrape(url, TOKEN).text
            return _value(text, "cortex_websocket_connections", route="NodeConsumer") == 0.0

        wait_until(closed, timeout=60)

        def flushed() -> bool:
            text = _scrape(url, TOKEN).text
            return (_value(text, "cortex_heartbeat_flush_seconds_count") or 0) >= 1

        wait_until(flushed, timeout=60, message=lambda: live_hub.log()[-3000:])
    finally:
        live_hub.stop_process(agent)
