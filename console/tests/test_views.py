"""Console pages: sign-in required, templates only, assets served by the hub, strict CSP."""

from __future__ import annotations

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db

PAGES = [
    "/console/",
    "/console/nodes/node-a/",
    "/console/sessions/",
    "/console/sessions/5/",
    "/console/settings/",
]


@pytest.mark.parametrize("path", PAGES)
def test_pages_redirect_to_sign_in(path: str) -> None:
    response = Client().get(path)
    assert response.status_code == 302
    assert response["Location"] == f"/console/login/?next={path}"


@pytest.mark.parametrize("path", PAGES)
def test_pages_render_for_a_signed_in_user(user, path: str) -> None:
    client = Client()
    client.force_login(user)
    response = client.get(path)
    assert response.status_code == 200
    assert "script-src 'self'" in response["Content-Security-Policy"]
    body = response.content.decode()
    assert "/console/assets/common.js" in body
    assert "<script>" not in body  # no inline script: the CSP would refuse it anyway
    assert "csrftoken" in response.cookies


def test_login_page_and_safe_next(settings) -> None:
    body = Client().get("/console/login/?next=https://evil.example/").content.decode()
    assert 'data-next="/console/"' in body
    assert 'id="login-form"' in body
    assert "/oidc/authenticate/" not in body
    settings.OIDC_ENABLED = True
    body = Client().get("/console/login/?next=/console/nodes/a/").content.decode()
    assert 'data-next="/console/nodes/a/"' in body
    assert 'href="/oidc/authenticate/?next=/console/nodes/a/"' in body


def test_assets_are_served_without_a_cdn() -> None:
    response = Client().get("/console/assets/common.js")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/javascript")
    assert response["X-Content-Type-Options"] == "nosniff"
    body = b"".join(response.streaming_content).decode()
    assert "innerHTML" not in body
    assert Client().get("/console/assets/../views.py").status_code == 400  # suspicious path
    assert Client().get("/console/assets/nope.js").status_code == 404


def test_admin_page_is_for_admins_only(user, staff_user) -> None:
    assert Client().get("/console/admin/").status_code == 302
    client = Client()
    client.force_login(user)
    assert client.get("/console/admin/").status_code == 404
    assert 'href="/console/admin/"' not in client.get("/console/settings/").content.decode()
    client.force_login(staff_user)
    response = client.get("/console/admin/")
    assert response.status_code == 200
    body = response.content.decode()
    assert "/console/assets/admin.js" in body
    assert 'href="/admin/auth/group/"' in body
    assert "<script>" not in body


def test_settings_page_sections(user, settings) -> None:
    client = Client()
    client.force_login(user)
    body = client.get("/console/settings/").content.decode()
    assert '<section id="standing-rules" class="panel">' in body
    assert "Standing approval rules" in body
    for kind in ("llm", "tts", "stt"):
        assert f'id="me-{kind}-form"' in body
    assert 'id="password-form"' in body
    settings.ALLOW_PASSWORD_LOGIN = False
    assert 'id="password-form"' not in client.get("/console/settings/").content.decode()
