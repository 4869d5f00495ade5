"""The session page's shared workspace in headless Chromium: choose the hub as source, upload a
file, watch the attached real node reach in_sync, download it, delete it; no console errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from console.tests.test_browser import ARTIFACTS, PASSWORD, browser  # noqa: F401
from console.tests.test_browser_chat import console_error, sign_in

pytestmark = [pytest.mark.browser, pytest.mark.slow]

SESSION = """
import json
from accounts.models import User
from sessions_app.services.sessions import node_attach, session_create
user = User.objects.get(email="alice@example.com")
session = session_create(actor=user, title="workspace")
node_attach(actor=user, session=session, node_id="live")
print(json.dumps({"id": session.pk}))
"""


def test_session_page_workspace(live_hub, browser, tmp_path: Path) -> None:  # noqa: F811
    seeded = live_hub.seed("http://127.0.0.1:9/v1", alice_password=PASSWORD, then=SESSION)
    invite, sid = seeded["invite"], seeded["id"]
    agent = live_hub.start_agent(node_id="live", invite=invite, root=tmp_path)
    upload = tmp_path / "notes.txt"
    upload.write_bytes(b"shared notes \x00\xff\n")
    context = browser.new_context(viewport={"width": 1280, "height": 1000}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(60_000)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: console_error(msg, errors))
    page.on("dialog", lambda dialog: dialog.accept())
    base = live_hub.http_url
    try:
        sign_in(page, base)
        page.goto(f"{base}/console/sessions/{sid}/")
        page.wait_for_selector("#workspace[data-source='none']")
        assert page.is_hidden("#ws-body")
        page.select_option("#ws-source", "hub")
        page.click("#ws-apply")
        page.wait_for_selector("#workspace[data-loaded='.']")
        page.wait_for_selector("#ws-table tr[data-path='.skills'][data-kind='directory']")

        page.set_input_files("#ws-upload-input", str(upload))
        page.click("#ws-upload-send")
        page.wait_for_selector("#ws-table tr[data-path='notes.txt']")
        page.wait_for_selector("#ws-nodes li[data-node='live'][data-state='in_sync']")
        on_node = tmp_path / "workspace" / "sessions" / str(sid) / "notes.txt"
        assert on_node.read_bytes() == upload.read_bytes()

        with page.expect_download() as info:
            page.click("#ws-table tr[data-path='notes.txt'] [data-action='download']")
        assert info.value.suggested_filename == "notes.txt"
        assert Path(info.value.path()).read_bytes() == upload.read_bytes()

        page.click("#ws-table tr[data-path='.skills'] [data-action='open']")
        page.wait_for_selector("#workspace[data-loaded='.skills']")
        page.click("#ws-up")
        page.wait_for_selector("#workspace[data-loaded='.']")
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "session-workspace.png"), full_page=True)

        page.click("#ws-table tr[data-path='notes.txt'] [data-action='delete']")
        page.wait_for_selector("#ws-table tr[data-path='notes.txt']", state="detached")
        assert page.text_content("#ws-status") == "Deleted notes.txt."
        assert errors == []
    except BaseException:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "session-workspace-failure.png"), full_page=True)
        print(live_hub.log()[-4000:])  # noqa: T201  # the hub's log explains a failure
        raise
    finally:
        context.close()
        live_hub.stop_process(agent)
