"""Bundles of small files (`files` `write_many`): one push, many files, checked whole on the node.

A hostile member (a link, a device, an absolute or `..` path, a path through a symlink out of
the root) refuses the whole bundle and nothing is written; a kill mid-bundle leaves every
visible file whole."""

from __future__ import annotations

import asyncio
import hashlib
import io
import os
import signal
import stat
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest
from asgiref.sync import sync_to_async

from accounts.models import AuditEvent
from mesh import services
from mesh.agent.skills.files import PUSH_TEMP, FileSkillError
from mesh.models import TaskStatus
from mesh.tests.test_agent_protocol import agent_config, finished, running_agent
from mesh.tests.test_file_push import (  # noqa: F401
    EXEC_MODE,
    FILE_MODE,
    _chunks,
    _payload,
    _receive,
    media,
    node_a,
)

GOOD = b"print('good')\n"


def _tar(members: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buf.getvalue()


def _file(name: str, data: bytes = GOOD) -> tuple[tarfile.TarInfo, bytes]:
    return tarfile.TarInfo(name), data


def _special(name: str, kind: bytes, link: str = "") -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, link
    return info, None


def _bundle_payload(blob: bytes, path: str = "sess") -> dict:
    return _payload(blob, action="write_many", path=path)


async def test_a_bundle_writes_every_file_and_reports_each(tmp_path: Path) -> None:
    files = {f"src/m{i}.py": os.urandom(i * 100) for i in range(20)}
    blob = _tar([_file(p, d) for p, d in files.items()])
    result = await _receive(tmp_path, _bundle_payload(blob), _chunks(blob, 4096))
    assert result["path"] == "sess"
    assert result["files"] == [
        {"path": p, "size": len(d), "sha256": hashlib.sha256(d).hexdigest(), "mode": FILE_MODE}
        for p, d in files.items()
    ]
    folder = tmp_path / "ws" / "sess"
    for path, data in files.items():
        assert (folder / path).read_bytes() == data
    assert sorted(os.listdir(folder)) == ["src"]  # the received bundle is gone too
    assert not [n for n in os.listdir(folder / "src") if PUSH_TEMP.match(n)]


async def test_a_bundle_member_keeps_its_executable_bit(tmp_path: Path) -> None:
    script, plain = _file("bin/run.sh", b"#!/bin/sh\necho ran\n"), _file("bin/notes.txt")
    script[0].mode, plain[0].mode = 0o755, 0o644
    blob = _tar([script, plain])
    result = await _receive(tmp_path, _bundle_payload(blob), _chunks(blob, 4096))
    assert [(f["path"], f["mode"]) for f in result["files"]] == [
        ("bin/run.sh", EXEC_MODE),
        ("bin/notes.txt", FILE_MODE),
    ]
    folder = tmp_path / "ws" / "sess" / "bin"
    assert stat.S_IMODE((folder / "run.sh").stat().st_mode) == EXEC_MODE
    assert stat.S_IMODE((folder / "notes.txt").stat().st_mode) == FILE_MODE
    assert subprocess.run([str(folder / "run.sh")], capture_output=True).stdout == b"ran\n"


HOSTILE: dict[str, list[tuple[tarfile.TarInfo, bytes | None]]] = {
    "symlink": [_special("ln", tarfile.SYMTYPE, "/etc/passwd")],
    "symlink_relative": [_special("ln", tarfile.SYMTYPE, "../../x")],
    "hardlink": [_special("ln", tarfile.LNKTYPE, "/etc/passwd")],
    "char_device": [_special("dev", tarfile.CHRTYPE)],
    "block_device": [_special("dev", tarfile.BLKTYPE)],
    "fifo": [_special("pipe", tarfile.FIFOTYPE)],
    "directory": [_special("dir", tarfile.DIRTYPE)],
    "contiguous": [_special("c", tarfile.CONTTYPE)],
    "absolute": [_file("/tmp/evil")],
    "dotdot": [_file("../evil")],
    "dotdot_inner": [_file("a/../../evil")],
    "dotdot_tail": [_file("a/..")],
    "home": [_file("~/evil")],
    "backslash": [_file("a\\..\\evil")],
    "control": [_file("a\nb")],
    "not_normalised": [_file("./a//b")],
    "duplicate": [_file("same"), _file("same", b"other")],
    "file_and_folder": [_file("a"), _file("a/b")],
    "through_symlink_out": [_file("escape/evil")],
    "through_symlink_in": [_file("inner/evil")],
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
async def test_a_bundle_with_one_hostile_member_writes_nothing(tmp_path: Path, case: str) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    folder = tmp_path / "ws" / "sess"
    folder.mkdir(parents=True)
    (folder / "escape").symlink_to(outside)
    (folder / "real").mkdir()
    (folder / "inner").symlink_to(folder / "real")
    blob = _tar([_file("first.txt"), *HOSTILE[case], _file("zz/last.txt")])
    with pytest.raises(FileSkillError) as info:
        await _receive(tmp_path, _bundle_payload(blob), _chunks(blob, 4096))
    assert info.value.rejected, info.value.code
    assert sorted(os.listdir(folder)) == ["escape", "inner", "real"]  # nothing, not even a temp
    assert os.listdir(outside) == [] and os.listdir(folder / "real") == []
    assert sorted(os.listdir(tmp_path)) == ["outside", "ws"]


async def test_a_bundle_that_is_no_tar_is_refused(tmp_path: Path) -> None:
    blob = b"not a tar at all" * 100
    with pytest.raises(FileSkillError) as info:
        await _receive(tmp_path, _bundle_payload(blob), _chunks(blob, 4096))
    assert (info.value.code, info.value.rejected) == ("bundle_invalid", True)
    assert os.listdir(tmp_path / "ws" / "sess") == []


async def test_a_bundle_folder_outside_the_root_is_refused(tmp_path: Path) -> None:
    blob = _tar([_file("a")])
    with pytest.raises(FileSkillError) as info:
        await _receive(tmp_path, _bundle_payload(blob, path="../out"), _chunks(blob, 4096))
    assert info.value.code == "path_outside_workspace"
    assert not (tmp_path / "out").exists()


KILL_CHILD = """
import sys
from pathlib import Path
from mesh.agent.skills.bundle import bundle_write
from mesh.agent.workspace import Workspace
ws = Workspace(sys.argv[1])
bundle_write(ws, Path(ws.root) / "sess", Path(sys.argv[2]))
"""


def test_a_kill_mid_bundle_leaves_no_partial_file(tmp_path: Path) -> None:
    files = {f"d{i % 7}/f{i}.bin": os.urandom(256 * 1024 + i) for i in range(600)}
    bundle = tmp_path / "bundle.tar"
    bundle.write_bytes(_tar([_file(p, d) for p, d in files.items()]))
    root = tmp_path / "ws"
    (root / "sess").mkdir(parents=True)
    child = subprocess.Popen([sys.executable, "-c", KILL_CHILD, str(root), str(bundle)])
    try:
        deadline = time.monotonic() + 60
        while not any((root / "sess").rglob("*.bin")) and child.poll() is None:
            assert time.monotonic() < deadline, "the bundle never started"
            time.sleep(0.01)
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=20)
    seen = 0
    for path in (root / "sess").rglob("*"):
        if path.is_dir() or PUSH_TEMP.match(path.name):
            continue  # a temporary name is never a file of the workspace (manifests skip it)
        rel = path.relative_to(root / "sess").as_posix()
        assert path.read_bytes() == files[rel], f"{rel} is partial"
        seen += 1
    assert seen > 0


@pytest.mark.django_db
async def test_a_real_agent_takes_a_bundle_and_refuses_a_hostile_one(
    tmp_path,
    mesh_address,
    node_a,  # noqa: F811
    user,
    media,  # noqa: F811
):
    node, token = node_a
    config = agent_config(tmp_path, mesh_address, "node-a", token)
    files = {f"pkg/m{i}.py": f"x = {i}\n".encode() for i in range(30)}
    good = _tar([_file(p, d) for p, d in files.items()])
    evil = _tar([_file("ok.txt"), _special("ln", tarfile.SYMTYPE, "/etc/shadow")])
    async with running_agent(config) as agent:
        await asyncio.wait_for(agent.connected.wait(), timeout=15)
        push = sync_to_async(services.file_push)
        kwargs = {"actor": user, "node": node, "action": "write_many"}
        done = await finished(
            (
                await push(
                    path="w",
                    source=io.BytesIO(good),
                    tags={"files": [[p, "x"] for p in files]},
                    **kwargs,
                )
            ).pk
        )
        refused = await finished((await push(path="bad", source=io.BytesIO(evil), **kwargs)).pk)
    assert done.status == TaskStatus.SUCCEEDED, (done.error_code, done.error_message)
    assert [f["path"] for f in done.result["files"]] == list(files)
    for path, data in files.items():
        assert (config.workspace_root / "w" / path).read_bytes() == data
    assert (refused.status, refused.error_code) == (TaskStatus.FAILED, "bundle_refused")
    assert os.listdir(config.workspace_root / "bad") == []
    # One audit row per bundle: its count of files, never its listing.
    row = await AuditEvent.objects.filter(target_id=str(done.pk)).aget()
    assert row.details["files"] == 30 and "pkg/m0.py" not in str(row.details)


async def test_a_push_whose_stream_closed_fails_at_once_as_incomplete(tmp_path: Path) -> None:
    """The hub never resumes a push on another stream: waiting for its timeout (600 s for a
    workspace sync) would hold the sync; it fails now and the hub sends the file again."""
    from mesh.agent.skills.push import ChunkSink, receive_push
    from mesh.agent.workspace import Workspace

    data = os.urandom(30_000)
    ws = Workspace(tmp_path / "ws")
    ws.ensure()
    sink = ChunkSink()
    await sink.put(_chunks(data, 10_000)[0])
    sink.stream_gone.set()  # what the agent does when its stream to the hub closes
    with pytest.raises(FileSkillError) as info:
        await receive_push(ws, _payload(data), sink, timeout=600, cancel=asyncio.Event())
    assert info.value.code == "push_incomplete"
    assert os.listdir(tmp_path / "ws") == []
