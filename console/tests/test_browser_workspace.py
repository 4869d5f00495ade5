"""The session page's shared workspace in headless Chromium: choose the hub as source, upload a
file, watch the attached real node reach in_sync, download it, delete it; then real drift (files
written on the node, a resync) shown with its diff, kept, and taken; no console errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from console.tests.test_browser import ARTIFACTS, PASSWORD, browser  # noqa: F401
from console.tests.test_browser_chat import console_error, sign_in
from cortex.testing import wait_until

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

        _drift_kept_then_taken(page, base, folder=on_node.parent, tmp_path=tmp_path)
        assert errors == []
    except BaseException:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "session-workspace-failure.png"), full_page=True)
        print(live_hub.log()[-4000:])  # noqa: T201  # the hub's log explains a failure
        raise
    finally:
        context.close()
        live_hub.stop_process(agent)


def _drift_kept_then_taken(page, base: str, *, folder: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    """Files changed on the node itself show up as drift after a resync (with a diff); "Keep the
    workspace's version" restores the node, "Take the node's version" makes it the source's."""
    plan = tmp_path / "plan.txt"
    plan.write_text("one\ntwo\n")
    page.set_input_files("#ws-upload-input", str(plan))
    page.click("#ws-upload-send")
    page.wait_for_selector("#ws-table tr[data-path='plan.txt']")
    page.wait_for_selector("#ws-nodes li[data-node='live'][data-state='in_sync']")
    wait_until(lambda: (folder / "plan.txt").exists(), timeout=60, message="plan.txt on the node")

    # Someone edits the node's copy and adds a file there; the resync reports both as drift.
    (folder / "plan.txt").write_text("one\nTWO\n")
    (folder / "extra.txt").write_text("local only\n")
    page.click("#ws-resync")
    node = "#ws-drift .ws-drift-node[data-node='live']"
    page.wait_for_selector(f"{node} li[data-path='plan.txt'] input[type=checkbox]")
    page.wait_for_selector(f"{node} li[data-path='extra.txt'][data-change='added'] input")
    page.wait_for_selector("#ws-nodes li[data-node='live'][data-state='drift']")
    page.click(f"{node} li[data-path='plan.txt'] details.ws-diff summary")
    diff = page.text_content(f"{node} li[data-path='plan.txt'] .ws-diff-text") or ""
    assert "-two\n" in diff and "+TWO\n" in diff, diff
    assert page.text_content(f"{node} li[data-path='extra.txt']").count("added on the node") == 1
    page.screenshot(path=str(ARTIFACTS / "session-workspace-drift.png"), full_page=True)

    page.click(f"{node} button[data-action='keep']")
    page.wait_for_selector("#ws-status[data-kind='ok']:has-text('Kept the workspace')")
    page.wait_for_selector("#ws-drift", state="hidden")
    page.wait_for_selector("#ws-nodes li[data-node='live'][data-state='in_sync']")
    wait_until(
        lambda: (
            (folder / "plan.txt").read_text() == "one\ntwo\n"
            and not (folder / "extra.txt").exists()
        ),
        timeout=60,
        message="the workspace's version back on the node",
    )

    # Edited again; this time the node's version is taken: the workspace holds it afterwards.
    (folder / "plan.txt").write_text("one\nthree\n")
    page.click("#ws-resync")
    page.wait_for_selector(f"{node} li[data-path='plan.txt'] input[type=checkbox]")
    page.click(f"{node} button[data-action='promote']")
    page.wait_for_selector("#ws-status[data-kind='ok']:has-text('Took live')")
    page.wait_for_selector("#ws-drift", state="hidden")
    page.wait_for_selector("#ws-nodes li[data-node='live'][data-state='in_sync']")
    mirror = page.request.get(f"{base}/api/v1/sessions/{folder.name}/workspace/file/?path=plan.txt")
    assert mirror.body() == b"one\nthree\n"
    assert (folder / "plan.txt").read_text() == "one\nthree\n"
