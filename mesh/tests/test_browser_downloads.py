"""Where the node's browser saves a chat's downloads: the hub names the session's workspace
folder and a byte cap (`downloads`), checked on the node by the one contract (fail closed); a
download lands in `<folder>/downloads/<safe name>`, never overwriting and never leaving the
node's workspace root. The real-Chromium part serves attachments on loopback."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from cortex.testing import Page, loopback_site
from mesh.agent.browser_actions import (
    HUB_KEYS,
    ActionError,
    BrowserPolicy,
    downloads_target,
    validate_action,
)
from mesh.agent.skills.browser import BrowserError, BrowserSessions, browser_available

POLICY = BrowserPolicy.from_dict({"allowed_domains": ["127.0.0.1"]})
REPORT = b"quarterly numbers\n"
BIG = b"x" * 5000

HOSTILE_FOLDERS: list[Any] = [
    "../outside",
    "sessions/../../outside",
    "sessions/7/..",
    "/etc",
    "//etc",
    "~/x",
    "~",
    "C:/x",
    "c:",
    "a\\..\\b",
    "sessions\\7",
    "a\x00b",
    "a\nb",
    "a\x7fb",
    "",
    "..",
    "./sessions/7",
    "sessions//7",
    "sessions/7/",
    "sessions/./7",
    "x" * 5000,
    "a/" + "b" * 300,
    None,
    7,
    ["sessions/7"],
    {"folder": "x"},
]


@pytest.mark.parametrize("folder", HOSTILE_FOLDERS)
def test_a_hostile_folder_is_refused_by_the_contract(folder: Any) -> None:
    with pytest.raises(ActionError) as caught:
        downloads_target({"folder": folder, "max_bytes": 10})
    assert caught.value.code == "invalid_downloads"


@pytest.mark.parametrize(
    "value",
    [
        "sessions/7",
        ["sessions/7", 10],
        {"folder": "sessions/7"},
        {"max_bytes": 10},
        {"folder": "sessions/7", "max_bytes": 10, "extra": 1},
        {"folder": "sessions/7", "max_bytes": -1},
        {"folder": "sessions/7", "max_bytes": True},
        {"folder": "sessions/7", "max_bytes": 1.5},
        {"folder": "sessions/7", "max_bytes": "10"},
        {"folder": "sessions/7", "max_bytes": 1 << 60},
    ],
)
def test_a_malformed_target_is_refused_by_the_contract(value: Any) -> None:
    with pytest.raises(ActionError) as caught:
        downloads_target(value)
    assert caught.value.code == "invalid_downloads"


def test_plain_targets_pass_unchanged() -> None:
    assert downloads_target(None) is None
    assert downloads_target({"folder": "sessions/7", "max_bytes": 0}) == ("sessions/7", 0)
    assert downloads_target({"folder": ".", "max_bytes": 5}) == (".", 5)
    assert downloads_target({"folder": "my proj/web", "max_bytes": 5}) == ("my proj/web", 5)
    assert "downloads" in HUB_KEYS
    with pytest.raises(ActionError):  # a caller of the hub's tool may not set it
        validate_action({"action": "tabs", "downloads": {"folder": ".", "max_bytes": 1}})


@pytest.mark.parametrize("folder", HOSTILE_FOLDERS)
async def test_the_node_refuses_a_hostile_folder_before_anything_runs(
    folder: Any, tmp_path: Path
) -> None:
    root = tmp_path / "root"
    sessions = BrowserSessions(policy=lambda: POLICY, downloads_root=lambda: root)
    payload = {"action": "tabs", "session": "7", "downloads": {"folder": folder, "max_bytes": 9}}
    with pytest.raises(BrowserError) as caught:
        await sessions.run(payload, 10)
    assert (caught.value.code, caught.value.rejected) == ("invalid_downloads", True)
    assert sessions._browser is None and not root.exists()  # nothing started, nothing made


async def test_the_node_refuses_a_session_folder_a_symlink_leads_out_of(tmp_path: Path) -> None:
    root, outside = tmp_path / "root", tmp_path / "outside"
    (root / "sessions").mkdir(parents=True)
    outside.mkdir()
    (root / "sessions" / "7").symlink_to(outside)
    (root / "lead").mkdir()
    (root / "lead" / "downloads").symlink_to(outside)
    sessions = BrowserSessions(policy=lambda: POLICY, downloads_root=lambda: root)
    for folder in ("sessions/7", "lead"):
        payload = {"action": "tabs", "downloads": {"folder": folder, "max_bytes": 9}}
        with pytest.raises(BrowserError) as caught:
            await sessions.run(payload, 10)
        assert (caught.value.code, caught.value.rejected) == ("path_outside_workspace", True)
    assert sessions._browser is None and list(outside.iterdir()) == []


# -- with a real Chromium ------------------------------------------------------------------------


@pytest.fixture
def files_site() -> Iterator[str]:
    page = (
        b"<html><body><a id=r href=/report.csv>r</a> <a id=b href=/big.bin>b</a>"
        b" <a id=d href=/dots>d</a></body></html>"
    )
    binary = "application/octet-stream"
    with loopback_site(
        {
            "/": Page(page, "text/html"),
            "/report.csv": Page(REPORT, binary, "report.csv"),
            "/big.bin": Page(BIG, binary, "big.bin"),
            "/dots": Page(REPORT, binary, "../../x.csv"),
        }
    ) as url:
        yield url


@pytest.mark.browser
async def test_downloads_land_in_the_session_folder_without_overwriting(
    files_site: str, tmp_path: Path
) -> None:
    if not browser_available():
        pytest.fail("Playwright or Chromium is missing: run scripts/system-packages.sh test")
    root, outside = tmp_path / "root", tmp_path / "outside"
    folder = root / "sessions" / "7" / "downloads"
    folder.mkdir(parents=True)
    outside.mkdir()
    (folder / "report.csv").write_bytes(b"mine")  # already there: kept
    (folder / "report-1.csv").symlink_to(outside / "stolen.csv")  # never written through
    sessions = BrowserSessions(policy=lambda: POLICY, downloads_root=lambda: root)
    target = {"folder": "sessions/7", "max_bytes": 1000}

    async def click(link: str, **extra: Any) -> dict[str, Any]:
        payload = {"action": "click", "selector": link, "session": "7", **extra}
        return await sessions.run(payload, 30)

    try:
        await sessions.run({"action": "navigate", "url": files_site + "/", "session": "7"}, 30)
        first = await click("#r", downloads=target)
        digest = hashlib.sha256(REPORT).hexdigest()
        assert first["downloads"] == [
            {"bytes": len(REPORT), "workspace_path": "downloads/report-2.csv", "sha256": digest}
        ]
        note = first["downloads_note"]
        assert note.startswith("workspace_path is the file's path in this chat's workspace")
        assert (folder / "report.csv").read_bytes() == b"mine"
        assert (folder / "report-2.csv").read_bytes() == REPORT
        assert list(outside.iterdir()) == []
        # A name that tries to climb stays a plain name in the same folder.
        dots = await click("#d", downloads=target)
        climbed = dots["downloads"][0]["workspace_path"]
        assert climbed.startswith("downloads/") and climbed.count("/") == 1, climbed
        assert (folder / climbed.split("/")[1]).read_bytes() == REPORT
        # Over the cap: kept on the node, outside the workspace, and the result says why.
        big = await click("#b", downloads=target)
        assert big["downloads"] == [
            {
                "bytes": len(BIG),
                "note": "5000 bytes is more than the 1000 bytes a download kept in the chat's "
                "workspace may have: saved in the node's own downloads/ folder instead, "
                "outside the workspace",
                "node_path": "downloads/big.bin",
                "sha256": hashlib.sha256(BIG).hexdigest(),
            }
        ]
        assert (root / "downloads" / "big.bin").read_bytes() == BIG
        assert not (folder / "big.bin").exists()
        # Without a workspace (no target): the node's own downloads/ folder, as before.
        plain = await click("#r")
        assert plain["downloads"][0]["node_path"] == "downloads/report.csv"
        assert (root / "downloads" / "report.csv").read_bytes() == REPORT
        assert sorted(p.name for p in folder.iterdir()) == sorted(
            ["report-1.csv", "report-2.csv", "report.csv", climbed.split("/")[1]]
        )
    finally:
        await sessions.close_all()
