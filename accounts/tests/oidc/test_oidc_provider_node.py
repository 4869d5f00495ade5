"""The whole authorization-code flow against a real OIDC provider process (node oidc-provider).

`make test` installs the provider with `npm ci` in accounts/tests/oidc_provider/. The browser is
played by `requests` (provider pages: sign-in and consent forms) and Django's test client (hub).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import pytest
import requests
from django.test import Client

from accounts.models import AuditEvent, User
from accounts.tests.oidc.conftest import oidc_settings
from cortex.testing import wait_until

PROVIDER_DIR = Path(__file__).resolve().parent.parent / "oidc_provider"
CLIENT_ID = "cortex-hub"
CLIENT_SECRET = "node-provider-client-secret-0123456789abcdef"
HUB = "http://testserver"


@pytest.fixture
def node_provider(free_port, db) -> Iterator[str]:  # type: ignore[no-untyped-def]
    if not (PROVIDER_DIR / "node_modules" / "oidc-provider").is_dir():
        subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund"],
            cwd=PROVIDER_DIR,
            check=True,
            capture_output=True,
            timeout=300,
        )
    port = free_port()
    env = {
        **os.environ,
        "PORT": str(port),
        "CLIENT_ID": CLIENT_ID,
        "CLIENT_SECRET": CLIENT_SECRET,
        "REDIRECT_URI": f"{HUB}/oidc/callback/",
        "NODE_ENV": "test",
        "ACCOUNTS_JSON": json.dumps(
            {"ada-sub": {"email": "ada@example.com", "name": "Ada", "groups": ["ops"]}}
        ),
    }
    process = subprocess.Popen(
        [shutil.which("node") or "node", "server.mjs"],
        cwd=PROVIDER_DIR,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    issuer = f"http://127.0.0.1:{port}"
    try:

        def serving() -> bool:
            assert process.poll() is None, process.stdout.read().decode()  # type: ignore[union-attr]
            return requests.get(f"{issuer}/.well-known/openid-configuration", timeout=1).ok

        wait_until(
            serving,
            timeout=30,
            ignore=(requests.RequestException,),
            message="oidc-provider did not start",
        )
        with oidc_settings(
            f"{issuer}/.well-known/openid-configuration",
            OIDC_RP_CLIENT_ID=CLIENT_ID,
            OIDC_RP_CLIENT_SECRET=CLIENT_SECRET,
            OIDC_RP_SCOPES="openid email profile groups",
            OIDC_GROUPS_CLAIM="groups",
        ):
            yield issuer
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=5)


def _through_provider(start_url: str, login: str) -> str:
    """Follow the provider's redirects and submit its sign-in and consent forms."""
    browser = requests.Session()
    response = browser.get(start_url, allow_redirects=False, timeout=10)
    for _ in range(12):
        if response.status_code in (302, 303):
            location = urljoin(response.url, response.headers["Location"])
            if location.startswith(HUB):
                return location
            response = browser.get(location, allow_redirects=False, timeout=10)
            continue
        assert response.status_code == 200, response.text[:500]
        action = re.search(r'<form[^>]*action="([^"]+)"', response.text)
        prompt = re.search(r'name="prompt" value="([^"]+)"', response.text)
        assert action and prompt, response.text[:500]
        data = {"prompt": prompt.group(1)}
        if data["prompt"] == "login":
            data.update(login=login, password="anything")
        response = browser.post(
            urljoin(response.url, action.group(1)), data=data, allow_redirects=False, timeout=10
        )
    raise AssertionError("the provider never redirected back to the hub")


@pytest.mark.slow
def test_sign_in_through_real_oidc_provider(node_provider):
    client = Client()
    start = client.get("/oidc/authenticate/", {"next": "/console/nodes/"})
    assert start.status_code == 302
    authorize = urlsplit(start["Location"])
    assert f"{authorize.scheme}://{authorize.netloc}" == node_provider
    assert "code_challenge_method=S256" in authorize.query and "nonce=" in authorize.query

    callback = urlsplit(_through_provider(start["Location"], "ada-sub"))
    done = client.get(f"{callback.path}?{callback.query}")
    assert done.status_code == 302
    assert done["Location"] == "/console/nodes/"

    user = User.objects.get(oidc_sub="ada-sub")
    assert user.email == "ada@example.com"
    assert user.display_name == "Ada"
    assert list(user.groups.values_list("name", flat=True)) == ["ops"]
    assert client.session["_auth_user_id"] == str(user.pk)
    me = client.get("/api/v1/users/me/")
    assert me.status_code == 200 and me.json()["email"] == "ada@example.com"
    event = AuditEvent.objects.get(action="auth.login.succeeded")
    assert event.actor == user and event.details == {"method": "oidc"}
    assert CLIENT_SECRET not in json.dumps(list(AuditEvent.objects.values("details")))

    # Replaying the same callback (code and state used) signs nobody in.
    replay_client = Client()
    replay = replay_client.get(f"{callback.path}?{callback.query}")
    assert replay["Location"] == "/admin/login/"
    assert "_auth_user_id" not in replay_client.session
