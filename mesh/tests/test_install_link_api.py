"""Install links and the policy check over the API (in process): who may, what is stored."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from accounts.models import AuditEvent
from mesh import services
from mesh.models import NodeInstallLink

pytestmark = pytest.mark.django_db


@pytest.fixture
def node(staff_user):  # type: ignore[no-untyped-def]
    created, _ = services.node_create(actor=staff_user, node_id="box", display_name="Box")
    return created


def test_install_link_is_for_admins_and_stores_only_a_hash(node, staff_client, user_client):
    assert user_client.post("/api/v1/nodes/box/install-link/").status_code in (403, 404)
    assert APIClient().post("/api/v1/nodes/box/install-link/").status_code == 401
    assert staff_client.post("/api/v1/nodes/nope/install-link/").status_code == 404
    response = staff_client.post("/api/v1/nodes/box/install-link/")
    assert response.status_code == 201
    token = response.json()["url"].rstrip("/").rsplit("/", 1)[1]
    row = NodeInstallLink.objects.get()
    assert token not in row.token_hash
    assert token not in str(list(AuditEvent.objects.values_list("details", flat=True)))


def test_script_then_bundle_each_work_once(node, staff_client, settings):
    settings.PUBLIC_URL = "https://hub.example"
    url = staff_client.post("/api/v1/nodes/box/install-link/").json()["url"]
    assert url.startswith("https://hub.example/api/v1/install/cil_")
    path = url.removeprefix("https://hub.example")
    anon = APIClient()
    script = anon.get(path)
    assert script.status_code == 200
    assert script["Content-Type"].startswith("text/x-shellscript")
    body = script.content.decode()
    bundle_url = next(
        line.split("=", 1)[1].strip("'") for line in body.splitlines() if "bundle_url=" in line
    )
    assert bundle_url.startswith("https://hub.example/api/v1/install/cib_")
    bundle = anon.get(bundle_url.removeprefix("https://hub.example"))
    assert bundle.status_code == 200
    assert bundle.content[:2] == b"PK"
    again = anon.get(bundle_url.removeprefix("https://hub.example"))
    assert again.status_code == 410
    assert again.json()["error"]["code"] == "install_link_used"
    replay = anon.get(path, HTTP_USER_AGENT="curl/8.5.0")
    assert replay.status_code == 200  # curl -f would hide an error body: the script fails
    assert "already used" in replay.content.decode()
    assert "exit 1" in replay.content.decode()
    assert anon.get(path).status_code == 410
    # A bundle token is not a script token, and a made-up token is unknown.
    assert anon.get(bundle_url.removeprefix("https://hub.example").replace(".zip", "")).status_code
    assert anon.get("/api/v1/install/cil_made-up/").status_code == 404
    assert anon.get("/api/v1/install/cib_made-up/bundle.zip").status_code == 404


def test_expired_link_says_so(node, staff_client):
    url = staff_client.post("/api/v1/nodes/box/install-link/").json()["url"]
    NodeInstallLink.objects.update(expires_at="2000-01-01T00:00:00Z")
    response = APIClient().get(url.split("127.0.0.1:8000", 1)[1])
    assert response.status_code == 410
    assert response["X-Cortex-Error"] == "install_link_expired"
    assert not AuditEvent.objects.filter(action="node.install_link_used").exists()


def test_policy_check_uses_the_sandbox_checker(node, staff_client, user_client):
    url = "/api/v1/nodes/box/policy/check/"
    denied = staff_client.post(
        url,
        {"command": "ls; rm -rf x", "policy": {"mode": "permissive", "denied_commands": ["rm"]}},
        format="json",
    )
    assert denied.status_code == 200
    assert (denied.json()["allowed"], denied.json()["offending"]) == (False, "rm")
    strict = {"mode": "strict", "allowed_commands": ["echo"], "sensitive_commands": []}
    ok = staff_client.post(url, {"command": "echo hi | echo", "policy": strict}, format="json")
    assert ok.json() == {
        "allowed": True,
        "sensitive": False,
        "reason": "Allowed.",
        "offending": "",
        "commands": ["echo", "echo"],
    }
    refused = staff_client.post(url, {"command": "cat x", "policy": strict}, format="json")
    assert refused.json()["allowed"] is False
    assert "strict" in refused.json()["reason"]
    sensitive = staff_client.post(
        url, {"command": "sudo ls", "policy": {"sensitive_commands": ["sudo"]}}, format="json"
    )
    assert sensitive.json()["sensitive"] is True
    bad = staff_client.post(url, {"command": "ls", "policy": {"mode": "nope"}}, format="json")
    assert bad.status_code == 400
    assert list(bad.json()["error"]["fields"]) == ["policy"]
    saved = staff_client.post(url, {"command": "ls"}, format="json")  # the node's own policy
    assert saved.status_code == 200
    assert user_client.post(url, {"command": "ls"}, format="json").status_code in (403, 404)
