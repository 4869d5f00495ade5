"""End to end against a real `manage.py serve` process: password sign-in, tokens, audit."""

from __future__ import annotations

import pytest
import requests


@pytest.mark.slow
def test_script_signs_in_creates_token_and_admin_sees_audit(live_hub):
    live_hub.manage(
        "shell",
        "-c",
        (
            "from accounts.models import User;"
            "User.objects.create_superuser(email='root@example.com', password='root pass 1');"
            "User.objects.create_user(email='ann@example.com', password='ann pass phrase 1')"
        ),
    )
    admin_token = live_hub.manage("create_api_token", "root@example.com", "--name", "e2e").strip()
    assert admin_token.startswith("ctx_")

    script = requests.Session()
    login = script.post(
        f"{live_hub.http_url}/api/v1/auth/login/",
        json={"email": "ann@example.com", "password": "ann pass phrase 1"},
        timeout=10,
    )
    assert login.status_code == 200, login.text
    assert "sessionid" in script.cookies
    csrf = script.cookies["csrftoken"]
    created = script.post(
        f"{live_hub.http_url}/api/v1/users/me/tokens/",
        json={"name": "laptop"},
        headers={"X-CSRFToken": csrf, "Referer": live_hub.http_url + "/"},
        timeout=10,
    )
    assert created.status_code == 201, created.text
    token = created.json()["token"]

    me = requests.get(
        f"{live_hub.http_url}/api/v1/users/me/",
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert me.status_code == 200 and me.json()["email"] == "ann@example.com"

    audit = requests.get(
        f"{live_hub.http_url}/api/v1/audit/?action=auth.login.",
        headers={"Authorization": f"Bearer {admin_token}"},
        timeout=10,
    )
    assert audit.status_code == 200
    assert [e["action"] for e in audit.json()["results"]] == ["auth.login.succeeded"]
    tokens = requests.get(
        f"{live_hub.http_url}/api/v1/audit/?action=token.created",
        headers={"Authorization": f"Bearer {admin_token}"},
        timeout=10,
    ).json()
    assert tokens["count"] == 2
    assert token not in str(tokens) and admin_token not in str(tokens)
    assert token not in live_hub.log() and "ann pass phrase 1" not in live_hub.log()
