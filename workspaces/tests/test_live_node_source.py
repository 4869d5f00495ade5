"""`node` workspaces with a real hub and real agents: a file a command creates on the lead
appears in the hub mirror and on the other node; ignores, symlinks out and deletes are honoured;
a script made executable on the lead runs on the other node; a write through the API reaches the
lead's folder."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

import pytest

from workspaces.tests.conftest import Api, LiveNodes, states, until

pytestmark = pytest.mark.slow


def _mirror(api: Api, sid: int) -> dict[str, str]:
    """Every file of the hub mirror (path -> sha256), walking the folders."""
    found: dict[str, str] = {}
    folders = [""]
    while folders:
        folder = folders.pop()
        answer = api("GET", f"/api/v1/sessions/{sid}/workspace/files/?path={folder}")
        if answer.status_code != 200:
            continue
        for entry in answer.json()["results"]:
            if entry["kind"] == "directory":
                folders.append(entry["path"])
            else:
                found[entry["path"]] = entry["sha256"]
    return found


def _run(api: Api, command: str, *, node: str = "live", cwd: str = "") -> dict[str, Any]:
    body: dict[str, Any] = {"command": command, "timeout": 30, "confirm": True}
    if cwd:
        body["cwd"] = cwd
    task = api("POST", f"/api/v1/nodes/{node}/tasks/", json=body)
    assert task.status_code == 201, task.text
    done = until(
        command,
        lambda: (
            (t := api("GET", f"/api/v1/tasks/{task.json()['id']}/?wait=20").json())["status"]
            not in ("queued", "dispatched", "running")
            and t
        ),
    )
    assert done["status"] == "succeeded", done
    return done  # type: ignore[no-any-return]


def test_node_workspace_follows_the_lead(live_nodes: LiveNodes, tmp_path: Path) -> None:
    api = live_nodes.api
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("not yours")
    lead_dir = live_nodes.roots["live"] / "workspace" / "proj"
    (lead_dir / "src").mkdir(parents=True)
    (lead_dir / "src" / "old.py").write_text("old = 1\n")
    (lead_dir / ".gitignore").write_text("*.log\nbuild/\n")
    (lead_dir / "out").symlink_to(outside)
    body = {"source": "node", "node_id": "live", "path": "proj"}
    sid = live_nodes.session(body, nodes=("live", "live2"))
    other = live_nodes.folder("live2", sid)

    # What the lead already holds reaches the mirror and the other node.
    until("old.py mirrored", lambda: "src/old.py" in _mirror(api, sid))
    until("old.py on live2", lambda: (other / "src" / "old.py").exists())

    # A file a command creates on the lead follows; ignored files and symlinks do not.
    _run(
        api,
        "mkdir -p proj/build && echo 'print(1)' > proj/src/new.py && "
        "echo noise > proj/debug.log && echo x > proj/build/out.o",
    )
    until("new.py on live2", lambda: (other / "src" / "new.py").exists())
    assert (other / "src" / "new.py").read_text() == "print(1)\n"
    mirror = _mirror(api, sid)
    assert sorted(mirror) == [".gitignore", "src/new.py", "src/old.py"], mirror
    assert not (other / "out").exists() and not (other / "debug.log").exists()

    # Deletes on the lead propagate.
    _run(api, "rm proj/src/old.py")
    until("old.py gone on live2", lambda: not (other / "src" / "old.py").exists())
    assert "src/old.py" not in _mirror(api, sid)

    # A script made executable on the lead runs on the other node; a chmod alone follows.
    _run(api, "printf '#!/bin/sh\\necho ran-on-the-other-node\\n' > proj/run.sh")
    _run(api, "chmod +x proj/run.sh")
    script = other / "run.sh"
    until("run.sh executable on live2", lambda: os.access(script, os.X_OK))
    ran = _run(api, "./run.sh", node="live2", cwd=f"sessions/{sid}")
    assert ran["stdout"] == "ran-on-the-other-node\n", ran
    _run(api, "chmod -x proj/run.sh")
    until("run.sh plain on live2", lambda: not os.access(script, os.X_OK))
    assert script.read_text() == "#!/bin/sh\necho ran-on-the-other-node\n"

    # A write through the API goes to the lead's folder too (and is not echoed back).
    put = api("PUT", f"/api/v1/sessions/{sid}/workspace/file/?path=src/hub.txt", data=b"hub")
    assert put.status_code == 200, put.text
    until("hub.txt on the lead", lambda: (lead_dir / "src" / "hub.txt").exists())
    until("hub.txt on live2", lambda: (other / "src" / "hub.txt").exists())
    until(
        "both in sync",
        lambda: states(api, sid) == {"live": ("in_sync", 0), "live2": ("in_sync", 0)},
    )
    time.sleep(0.5)
    assert sorted(_mirror(api, sid)) == [".gitignore", "run.sh", "src/hub.txt", "src/new.py"]
    assert list(outside.iterdir()) == [outside / "secret.txt"]
