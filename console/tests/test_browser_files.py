"""The node page's file browser in headless Chromium: list, open a folder, download, upload and
delete in a real agent's workspace, each through the files skill (a files task on the node)."""

from __future__ import annotations

from pathlib import Path

import pytest

from console.tests.browsing import ARTIFACTS, browser, open_page, seed_console, sign_in  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_node_page_file_browser(live_hub, browser, tmp_path: Path) -> None:  # noqa: F811
    invite = seed_console(live_hub)["invite"]
    workspace = tmp_path / "workspace"
    (workspace / "docs").mkdir(parents=True)
    (workspace / "docs" / "notes.txt").write_text("notes from the node\n")
    (workspace / "old.log").write_text("old\n")
    upload = tmp_path / "upload.txt"
    upload.write_bytes(b"uploaded \x00\xff bytes\n")
    context, page, errors = open_page(browser, height=800, accept_downloads=True)
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.accept()))
    base = live_hub.http_url
    agent = None
    try:
        # Offline: the panel says so and asks the node nothing.
        sign_in(page, base)
        page.goto(base + "/console/nodes/live/")
        page.wait_for_selector("#files-status:has-text('its files show when it is online')")
        # The node comes online: its workspace root lists by itself.
        agent = live_hub.start_agent(
            node_id="live", invite=invite, root=tmp_path, workspace=workspace
        )
        page.wait_for_selector("#files-table tr[data-path='old.log']", timeout=60_000)
        assert page.locator("#files-table tr[data-path='docs'][data-type='directory']").count()

        # Open a folder, download a file from it.
        page.click("#files-table tr[data-path='docs'] [data-action='open']")
        page.wait_for_selector("#files-table tr[data-path='docs/notes.txt']")
        assert page.text_content("#files-path") == "/docs"
        with page.expect_download() as info:
            page.click("#files-table tr[data-path='docs/notes.txt'] [data-action='download']")
        download = info.value
        assert download.suggested_filename == "notes.txt"
        assert Path(download.path()).read_text() == "notes from the node\n"

        # Upload into that folder: the bytes land in the node's workspace as they were.
        page.set_input_files("#files-upload-input", str(upload))
        page.click("#files-upload-send")
        page.wait_for_selector("#files-table tr[data-path='docs/upload.txt']", timeout=60_000)
        page.wait_for_selector("#files-status:text-is('Uploaded upload.txt.')")
        assert (workspace / "docs" / "upload.txt").read_bytes() == upload.read_bytes()

        # Back up; delete a file (the page asks first).
        page.click("#files-up")
        page.wait_for_selector("#files-table tr[data-path='old.log']")
        page.click("#files-table tr[data-path='old.log'] [data-action='delete']")
        page.wait_for_selector("#files-table tr[data-path='old.log']", state="detached")
        assert dialogs == ["Delete old.log on live?"]
        assert not (workspace / "old.log").exists()
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "node-files.png"), full_page=True)

        # Outside the workspace: refused by the node's jail, shown, nothing read.
        answer = page.evaluate(
            "async () => { const r = await fetch('/api/v1/nodes/live/workspace/file/"
            "?path=../agent_config.yaml'); return [r.status, await r.json()]; }"
        )
        assert answer[0] == 400, answer
        assert answer[1]["error"]["code"] == "path_outside_workspace", answer
        # File actions stay out of the terminal (the history lists them).
        assert page.locator("#terminal .task").count() == 0
        # Chromium logs the (expected) 400 of the refused fetch; nothing else may be there.
        assert [e for e in errors if "status of 400" not in e] == []
    except BaseException:
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "node-files-failure.png"), full_page=True)
        print(live_hub.log()[-4000:])  # noqa: T201  # the hub's log explains a failure
        raise
    finally:
        context.close()
        if agent is not None:
            live_hub.stop_process(agent)
