"""Console pages: sign-in required, templates only, assets as static files, strict CSP."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db

PAGES = [
    "/console/",
    "/console/nodes/node-a/",
    "/console/sessions/",
    "/console/sessions/5/",
    "/console/settings/",
    "/console/agents/",
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
    assert '<script src="/static/console/common.js">' in body
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


def test_console_scripts_never_write_html() -> None:
    """Model and node text reaches the DOM as text, or through DOMPurify (markdown.js)."""
    scripts = sorted((Path(__file__).resolve().parents[1] / "static" / "console").glob("*.js"))
    assert scripts
    for script in scripts:
        body = script.read_text()
        assert "innerHTML" not in body, script.name
        assert "insertAdjacentHTML" not in body, script.name
        assert "document.write" not in body, script.name


def test_the_old_asset_route_is_gone() -> None:
    """One way to serve static files: /static/ (cortex.static), not a view of the console's."""
    assert Client().get("/console/assets/common.js").status_code == 404


def test_vendored_libraries_the_templates_load_are_installed(tmp_path) -> None:
    from console.checks import check_vendor_files, missing_vendor_files

    assert check_vendor_files(None) == []
    (tmp_path / "page.html").write_text(
        "{% load static %}<script src=\"{% static 'vendor/marked/marked.umd.js' %}\"></script>"
        "<script src=\"{% static 'vendor/nope/nope.js' %}\"></script>"
    )
    assert missing_vendor_files(tmp_path) == ["vendor/nope/nope.js"]


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
    assert "/static/console/admin.js" in body
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
