"""`hub` workspaces with a real hub process and real agents: PUT/DELETE through the API reach
every attached node; a node killed mid-sync resumes from its manifest with no partial file."""

from __future__ import annotations

import hashlib
import os
import signal
import time
from pathlib import Path
from typing import Any

import pytest

from workspaces.tests.conftest import LiveNodes, states, until

pytestmark = pytest.mark.slow


def test_hub_workspace_reaches_two_real_nodes(live_nodes: LiveNodes, tmp_path: Path) -> None:
    api, agents = live_nodes.api, live_nodes.agents
    outside = tmp_path / "outside"
    outside.mkdir()
    sid = live_nodes.session({"source": "hub"}, nodes=("live", "live2"))
    folders = [live_nodes.folder(n, sid) for n in ("live", "live2")]

    body = b"print('shared')\n"
    put = api("PUT", f"/api/v1/sessions/{sid}/workspace/file/?path=src/app.py", data=body)
    assert put.status_code == 200, put.text
    for folder in folders:
        until(f"{folder}/src/app.py", lambda f=folder: (f / "src/app.py").exists())
        assert (folder / "src/app.py").read_bytes() == body
    until(
        "both in sync",
        lambda: states(api, sid) == {"live": ("in_sync", 0), "live2": ("in_sync", 0)},
    )

    # Deletes propagate.
    assert api("DELETE", f"/api/v1/sessions/{sid}/workspace/file/?path=src").status_code == 204
    for folder in folders:
        until(f"{folder} emptied", lambda f=folder: not (f / "src/app.py").exists())

    # A node killed mid-sync resumes from its manifest: every file whole, no temporary.
    agents["live2"].send_signal(signal.SIGKILL)
    agents["live2"].wait(timeout=20)
    until("live2 offline", lambda: states(api, sid).get("live2", ("",))[0] == "offline")
    blobs = {f"big/{i}.bin": os.urandom(512 * 1024 + i) for i in range(6)}
    # Small files travel many to a task (a bundle): killed mid-bundle, none is partial.
    blobs.update({f"small/{i}.txt": os.urandom(2000 + i) for i in range(40)})
    for path, data in blobs.items():
        answer = api("PUT", f"/api/v1/sessions/{sid}/workspace/file/?path={path}", data=data)
        assert answer.status_code == 200, answer.text
    live_nodes.start_agent("live2")
    time.sleep(0.3)  # let the sync start, then kill it again in the middle
    agents["live2"].send_signal(signal.SIGKILL)
    agents["live2"].wait(timeout=20)
    live_nodes.start_agent("live2")
    for folder in folders:
        for path, data in blobs.items():
            until(
                f"{folder}/{path}",
                lambda f=folder, p=path, d=data: (
                    (f / p).exists()
                    and hashlib.sha256((f / p).read_bytes()).digest() == hashlib.sha256(d).digest()
                ),
                timeout=90,
            )
    until(
        "both in sync again",
        lambda: states(api, sid) == {"live": ("in_sync", 0), "live2": ("in_sync", 0)},
        timeout=90,
    )
    for folder in folders:
        for sub in ("big", "small"):
            # A temporary name (a push killed mid-way) is no file of the workspace.
            names = sorted(p.name for p in (folder / sub).iterdir() if ".push-" not in p.name)
            want = sorted(p.rsplit("/", 1)[1] for p in blobs if p.startswith(sub + "/"))
            assert names == want, names

    # A symlink on a node pointing out of its workspace is never written through.
    (folders[0] / "escape").symlink_to(outside)
    answer = api("PUT", f"/api/v1/sessions/{sid}/workspace/file/?path=escape/x.txt", data=b"x")
    assert answer.status_code == 200, answer.text
    until("live drifts", lambda: states(api, sid)["live"][0] == "drift")
    assert list(outside.iterdir()) == []
    until("live2 has it", lambda: (folders[1] / "escape" / "x.txt").exists())


def test_drift_on_a_node_is_reported_then_kept_or_promoted(live_nodes: LiveNodes) -> None:
    api = live_nodes.api
    sid = live_nodes.session({"source": "hub"}, nodes=("live", "live2"))
    base = f"/api/v1/sessions/{sid}/workspace"
    api("PUT", f"{base}/file/?path=notes.txt", data=b"one\ntwo\n")
    api("PUT", f"{base}/file/?path=keep.txt", data=b"source\n")
    folders = [live_nodes.folder(n, sid) for n in ("live", "live2")]
    until(
        "in sync",
        lambda: states(api, sid) == {"live": ("in_sync", 0), "live2": ("in_sync", 0)},
    )

    # Someone edits files on live2 (not the source): a resync reports drift, with a diff.
    (folders[1] / "notes.txt").write_text("one\nTWO\n")
    (folders[1] / "keep.txt").write_text("local\n")
    (folders[1] / "extra.txt").write_text("new\n")
    assert api("POST", f"{base}/resync/").status_code == 200

    def drift() -> Any:
        nodes = {n["node_id"]: n for n in api("GET", f"{base}/").json()["nodes"]}
        entries = nodes["live2"]["drift"]
        fetched = [e for e in entries if e.get("fetched")]
        return nodes["live2"]["state"] == "drift" and len(fetched) == 3 and entries

    entries = {e["path"]: e for e in until("drift on live2", drift)}
    assert sorted(entries) == ["extra.txt", "keep.txt", "notes.txt"]
    assert (entries["notes.txt"]["change"], entries["extra.txt"]["change"]) == (
        "modified",
        "added",
    )
    assert "-two\n+TWO\n" in entries["notes.txt"]["diff"]
    assert states(api, sid)["live"] == ("in_sync", 0)
    # Nothing on the node was overwritten meanwhile.
    assert (folders[1] / "keep.txt").read_text() == "local\n"

    # Promote two of them: they become the source's and reach live too.
    promoted = api(
        "POST",
        f"{base}/resolve/",
        json={"node_id": "live2", "action": "promote", "paths": ["notes.txt", "extra.txt"]},
    )
    assert promoted.status_code == 200, promoted.text
    until("promoted on live", lambda: (folders[0] / "notes.txt").read_text() == "one\nTWO\n")
    until("extra on live", lambda: (folders[0] / "extra.txt").exists())
    # keep.txt was not promoted: the source's version comes back on live2.
    until("keep restored", lambda: (folders[1] / "keep.txt").read_text() == "source\n")
    until(
        "in sync again",
        lambda: states(api, sid) == {"live": ("in_sync", 0), "live2": ("in_sync", 0)},
    )
    again = api("POST", f"{base}/resolve/", json={"node_id": "live2", "action": "keep"})
    assert (again.status_code, again.json()["error"]["code"]) == (409, "workspace_no_drift")


def test_a_hub_restart_mid_sync_loses_nothing(live_nodes: LiveNodes) -> None:
    api, hub = live_nodes.api, live_nodes.hub
    sid = live_nodes.session({"source": "hub"}, nodes=("live",))
    blobs = {f"r/{i}.bin": os.urandom(256 * 1024 + i) for i in range(8)}
    for path, data in blobs.items():
        answer = api("PUT", f"/api/v1/sessions/{sid}/workspace/file/?path={path}", data=data)
        assert answer.status_code == 200, answer.text
    hub.stop()  # whatever was under way stops with it
    hub.start()
    folder = live_nodes.folder("live", sid)
    for path, data in blobs.items():
        until(
            path,
            lambda p=path, d=data: (folder / p).exists() and (folder / p).read_bytes() == d,
            timeout=90,
        )
    until("in sync", lambda: states(api, sid) == {"live": ("in_sync", 0)}, timeout=90)
    names = sorted(p.name for p in (folder / "r").iterdir())
    assert names == sorted(p.rsplit("/", 1)[1] for p in blobs), names
