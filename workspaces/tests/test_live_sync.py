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
import requests

from cortex.testing import wait_until

pytestmark = pytest.mark.slow

SECOND_NODE = """
import json
from django.contrib.auth.models import Group
from accounts.models import User
from mesh import services
admin = User.objects.get(email="root@example.com")
node, invite = services.node_create(actor=admin, node_id="live2", display_name="Live two")
services.node_grant(actor=admin, node=node, group=Group.objects.get(name="team"))
print(json.dumps({"invite": invite}))
"""


def _until(what: str, check: Any, timeout: float = 60.0) -> Any:
    """`cortex.testing.wait_until`, named by what it waits for."""
    return wait_until(check, timeout=timeout, message=f"never: {what}")


class Api:
    def __init__(self, hub: Any, token: str) -> None:
        self.url, self.headers = hub.http_url, {"Authorization": f"Bearer {token}"}

    def __call__(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return requests.request(method, self.url + path, headers=self.headers, timeout=60, **kwargs)


def _states(api: Api, sid: int) -> dict[str, tuple[str, int]]:
    body = api("GET", f"/api/v1/sessions/{sid}/workspace/").json()
    return {n["node_id"]: (n["state"], n["pending"]) for n in body["nodes"]}


def _debug(live_hub: Any, roots: list[Path]) -> str:
    logs = [(r / "agent.log").read_text(errors="replace")[-2000:] for r in roots]
    return "\n---\n".join([live_hub.log()[-4000:], *logs])


def test_hub_workspace_reaches_two_real_nodes(live_hub, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import json

    invite1 = live_hub.seed_team_node()
    invite2 = json.loads(live_hub.manage("shell", "-v", "0", "-c", SECOND_NODE).splitlines()[-1])[
        "invite"
    ]
    api = Api(live_hub, live_hub.manage("create_api_token", "alice@example.com").strip())
    roots = [tmp_path / "n1", tmp_path / "n2"]
    for root in roots:
        root.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    agents = [
        live_hub.start_agent(node_id="live", invite=invite1, root=roots[0]),
        live_hub.start_agent(node_id="live2", invite=invite2, root=roots[1]),
    ]
    try:
        for node_id in ("live", "live2"):
            _until(
                f"{node_id} online",
                lambda n=node_id: api("GET", f"/api/v1/nodes/{n}/").json()["status"] != "offline",
            )
        sid = api("POST", "/api/v1/sessions/", json={"title": "ws"}).json()["id"]
        for node_id in ("live", "live2"):
            attached = api("POST", f"/api/v1/sessions/{sid}/nodes/", json={"node_id": node_id})
            assert attached.status_code in (200, 201), attached.text
        patched = api("PATCH", f"/api/v1/sessions/{sid}/workspace/", json={"source": "hub"})
        assert patched.status_code == 200, patched.text
        folders = [r / "workspace" / "sessions" / str(sid) for r in roots]

        body = b"print('shared')\n"
        put = api("PUT", f"/api/v1/sessions/{sid}/workspace/file/?path=src/app.py", data=body)
        assert put.status_code == 200, put.text
        for folder in folders:
            _until(f"{folder}/src/app.py", lambda f=folder: (f / "src/app.py").exists())
            assert (folder / "src/app.py").read_bytes() == body
        _until(
            "both in sync",
            lambda: _states(api, sid) == {"live": ("in_sync", 0), "live2": ("in_sync", 0)},
        )

        # Deletes propagate.
        assert api("DELETE", f"/api/v1/sessions/{sid}/workspace/file/?path=src").status_code == 204
        for folder in folders:
            _until(f"{folder} emptied", lambda f=folder: not (f / "src/app.py").exists())

        # A node killed mid-sync resumes from its manifest: every file whole, no temporary.
        agents[1].send_signal(signal.SIGKILL)
        agents[1].wait(timeout=20)
        _until("live2 offline", lambda: _states(api, sid).get("live2", ("",))[0] == "offline")
        blobs = {f"big/{i}.bin": os.urandom(512 * 1024 + i) for i in range(6)}
        # Small files travel many to a task (a bundle): killed mid-bundle, none is partial.
        blobs.update({f"small/{i}.txt": os.urandom(2000 + i) for i in range(40)})
        for path, data in blobs.items():
            answer = api("PUT", f"/api/v1/sessions/{sid}/workspace/file/?path={path}", data=data)
            assert answer.status_code == 200, answer.text
        agents[1] = live_hub.start_agent(node_id="live2", invite=invite2, root=roots[1])
        time.sleep(0.3)  # let the sync start, then kill it again in the middle
        agents[1].send_signal(signal.SIGKILL)
        agents[1].wait(timeout=20)
        agents[1] = live_hub.start_agent(node_id="live2", invite=invite2, root=roots[1])
        for folder in folders:
            for path, data in blobs.items():
                _until(
                    f"{folder}/{path}",
                    lambda f=folder, p=path, d=data: (
                        (f / p).exists()
                        and hashlib.sha256((f / p).read_bytes()).digest()
                        == hashlib.sha256(d).digest()
                    ),
                    timeout=90,
                )
        _until(
            "both in sync again",
            lambda: _states(api, sid) == {"live": ("in_sync", 0), "live2": ("in_sync", 0)},
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
        _until("live drifts", lambda: _states(api, sid)["live"][0] == "drift")
        assert list(outside.iterdir()) == []
        _until("live2 has it", lambda: (folders[1] / "escape" / "x.txt").exists())
    except BaseException:
        print(_debug(live_hub, roots))  # noqa: T201  # the logs explain a failure
        raise
    finally:
        for agent in agents:
            live_hub.stop_process(agent)


def test_drift_on_a_node_is_reported_then_kept_or_promoted(live_hub, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import json

    invite1 = live_hub.seed_team_node()
    invite2 = json.loads(live_hub.manage("shell", "-v", "0", "-c", SECOND_NODE).splitlines()[-1])[
        "invite"
    ]
    api = Api(live_hub, live_hub.manage("create_api_token", "alice@example.com").strip())
    roots = [tmp_path / "n1", tmp_path / "n2"]
    for root in roots:
        root.mkdir()
    agents = [
        live_hub.start_agent(node_id="live", invite=invite1, root=roots[0]),
        live_hub.start_agent(node_id="live2", invite=invite2, root=roots[1]),
    ]
    try:
        for node_id in ("live", "live2"):
            _until(
                f"{node_id} online",
                lambda n=node_id: api("GET", f"/api/v1/nodes/{n}/").json()["status"] != "offline",
            )
        sid = api("POST", "/api/v1/sessions/", json={"title": "ws"}).json()["id"]
        for node_id in ("live", "live2"):
            api("POST", f"/api/v1/sessions/{sid}/nodes/", json={"node_id": node_id})
        api("PATCH", f"/api/v1/sessions/{sid}/workspace/", json={"source": "hub"})
        base = f"/api/v1/sessions/{sid}/workspace"
        api("PUT", f"{base}/file/?path=notes.txt", data=b"one\ntwo\n")
        api("PUT", f"{base}/file/?path=keep.txt", data=b"source\n")
        folders = [r / "workspace" / "sessions" / str(sid) for r in roots]
        _until(
            "in sync",
            lambda: _states(api, sid) == {"live": ("in_sync", 0), "live2": ("in_sync", 0)},
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

        entries = {e["path"]: e for e in _until("drift on live2", drift)}
        assert sorted(entries) == ["extra.txt", "keep.txt", "notes.txt"]
        assert (entries["notes.txt"]["change"], entries["extra.txt"]["change"]) == (
            "modified",
            "added",
        )
        assert "-two\n+TWO\n" in entries["notes.txt"]["diff"]
        assert _states(api, sid)["live"] == ("in_sync", 0)
        # Nothing on the node was overwritten meanwhile.
        assert (folders[1] / "keep.txt").read_text() == "local\n"

        # Promote two of them: they become the source's and reach live too.
        promoted = api(
            "POST",
            f"{base}/resolve/",
            json={"node_id": "live2", "action": "promote", "paths": ["notes.txt", "extra.txt"]},
        )
        assert promoted.status_code == 200, promoted.text
        _until("promoted on live", lambda: (folders[0] / "notes.txt").read_text() == "one\nTWO\n")
        _until("extra on live", lambda: (folders[0] / "extra.txt").exists())
        # keep.txt was not promoted: the source's version comes back on live2.
        _until("keep restored", lambda: (folders[1] / "keep.txt").read_text() == "source\n")
        _until(
            "in sync again",
            lambda: _states(api, sid) == {"live": ("in_sync", 0), "live2": ("in_sync", 0)},
        )
        again = api("POST", f"{base}/resolve/", json={"node_id": "live2", "action": "keep"})
        assert (again.status_code, again.json()["error"]["code"]) == (409, "workspace_no_drift")
    except BaseException:
        print(_debug(live_hub, roots))  # noqa: T201  # the logs explain a failure
        raise
    finally:
        for agent in agents:
            live_hub.stop_process(agent)


def test_a_hub_restart_mid_sync_loses_nothing(live_hub, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    invite = live_hub.seed_team_node()
    api = Api(live_hub, live_hub.manage("create_api_token", "alice@example.com").strip())
    agent = live_hub.start_agent(node_id="live", invite=invite, root=tmp_path)
    try:
        _until("online", lambda: api("GET", "/api/v1/nodes/live/").json()["status"] != "offline")
        sid = api("POST", "/api/v1/sessions/", json={"title": "ws"}).json()["id"]
        api("POST", f"/api/v1/sessions/{sid}/nodes/", json={"node_id": "live"})
        api("PATCH", f"/api/v1/sessions/{sid}/workspace/", json={"source": "hub"})
        blobs = {f"r/{i}.bin": os.urandom(256 * 1024 + i) for i in range(8)}
        for path, data in blobs.items():
            answer = api("PUT", f"/api/v1/sessions/{sid}/workspace/file/?path={path}", data=data)
            assert answer.status_code == 200, answer.text
        live_hub.stop()  # whatever was under way stops with it
        live_hub.start()
        folder = tmp_path / "workspace" / "sessions" / str(sid)
        for path, data in blobs.items():
            _until(
                path,
                lambda p=path, d=data: (folder / p).exists() and (folder / p).read_bytes() == d,
                timeout=90,
            )
        _until("in sync", lambda: _states(api, sid) == {"live": ("in_sync", 0)}, timeout=90)
        names = sorted(p.name for p in (folder / "r").iterdir())
        assert names == sorted(p.rsplit("/", 1)[1] for p in blobs), names
    except BaseException:
        print(_debug(live_hub, [tmp_path]))  # noqa: T201  # the logs explain a failure
        raise
    finally:
        live_hub.stop_process(agent)
