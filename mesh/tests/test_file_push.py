"""File push hub -> node: staging, the REST endpoint, FileChunk streaming, the agent's receiver."""

from __future__ import annotations

import asyncio
import hashlib
import io
import json
import os
import stat
import subprocess
from pathlib import Path

import pytest
from asgiref.sync import sync_to_async
from django.contrib.auth.models import Group
from django.core.files.storage import default_storage
from django.core.files.uploadedfile import SimpleUploadedFile

from accounts.models import AuditEvent
from cortex.errors import ValidationFailed
from cortex.testing import wait_until_async
from mesh import services
from mesh.agent.pb import mesh_pb2
from mesh.agent.skills.files import FileSkillError
from mesh.agent.skills.push import ChunkSink, PushCancelled, receive_push
from mesh.agent.workspace import Workspace
from mesh.grpc.file_stream import CHUNK_BYTES
from mesh.models import Task, TaskStatus
from mesh.tests.meshkit import TestNode, join
from mesh.tests.test_agent_protocol import agent_config, finished, running_agent

MIB = 1024 * 1024


@pytest.fixture
def media(settings, tmp_path: Path) -> Path:
    """Staged blobs go to a fresh MEDIA_ROOT per test."""
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return tmp_path / "media"


def staged(media: Path) -> list[str]:
    root = media / "mesh" / "push"
    return sorted(p.name for p in root.iterdir()) if root.exists() else []


@pytest.fixture
def node_a(make_node, user, grant):  # type: ignore[no-untyped-def]
    node, token = make_node("node-a")
    grant(user, node)
    return node, token


# ------------------------------------------------------------------------------------- REST
@pytest.mark.django_db
def test_rest_push_stages_the_file_and_queues_a_write(
    user_client, user, node_a, media, django_capture_on_commit_callbacks
) -> None:
    data = os.urandom(3 * MIB + 5)
    response = user_client.post(
        "/api/v1/nodes/node-a/files/",
        {"path": "in/data.bin", "file": SimpleUploadedFile("data.bin", data)},
        format="multipart",
    )
    assert response.status_code == 202, response.content
    body = response.json()
    task = Task.objects.get(pk=body["id"])
    assert (body["status"], body["kind"], task.requested_by_id) == ("queued", "files", user.pk)
    blob = task.payload["blob"]
    assert task.payload == {
        "action": "write",
        "path": "in/data.bin",
        "blob": blob,
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
    }
    assert blob.startswith("mesh/push/")
    with default_storage.open(blob, "rb") as fh:
        assert fh.read() == data
    # Staged blobs are the hub user's alone.
    assert (media / blob).stat().st_mode & 0o777 == 0o600
    assert (media / "mesh" / "push").stat().st_mode & 0o777 == 0o700
    entry = AuditEvent.objects.get(action="task.dispatch", target_id=str(task.pk))
    assert (entry.details["kind"], entry.details["action"], entry.details["path"]) == (
        "files",
        "write",
        "in/data.bin",
    )

    with django_capture_on_commit_callbacks(execute=True):
        services.task_cancel(actor=user, task=task)  # terminal: the staged blob goes
    assert staged(media) == []


@pytest.mark.django_db
def test_rest_push_to_another_groups_node_is_404(user_client, make_node, media) -> None:
    make_node("node-b")
    Group.objects.create(name="elsewhere")
    response = user_client.post(
        "/api/v1/nodes/node-b/files/",
        {"path": "x", "file": SimpleUploadedFile("x", b"hi")},
        format="multipart",
    )
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"
    assert (Task.objects.count(), staged(media)) == (0, [])


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("fields", "missing"),
    [({"path": "x"}, "file"), ({"file": b"hi"}, "path")],
)
def test_rest_push_without_file_or_path_is_400(user_client, node_a, media, fields, missing) -> None:
    body = {k: SimpleUploadedFile("f", v) if k == "file" else v for k, v in fields.items()}
    response = user_client.post("/api/v1/nodes/node-a/files/", body, format="multipart")
    assert response.status_code == 400
    error = response.json()["error"]
    assert (error["code"], list(error["fields"])) == ("invalid_input", [missing])
    assert (Task.objects.count(), AuditEvent.objects.filter(action="task.dispatch").count()) == (
        0,
        0,
    )
    assert staged(media) == []


@pytest.mark.django_db
def test_a_task_payload_cannot_name_a_staged_blob(user, node_a, media) -> None:
    """Only `file_push` sets `blob`: a files task (the LLM's tool, say) may not stream
    someone else's staged file."""
    with pytest.raises(ValidationFailed) as refused:
        services.task_dispatch(
            actor=user,
            node=node_a[0],
            kind="files",
            payload={"action": "write", "path": "x", "blob": "mesh/push/abc"},
        )
    assert "blob" in refused.value.fields
    assert not Task.objects.exists()


@pytest.mark.django_db
def test_rest_push_over_the_limit_is_413(user_client, node_a, media, settings) -> None:
    settings.MESH_FILE_PUSH_MAX_BYTES = 1000
    small_body = user_client.post(
        "/api/v1/nodes/node-a/files/",
        {"path": "x", "file": SimpleUploadedFile("x", b"y" * 1001)},
        format="multipart",
    )
    assert small_body.status_code == 413
    assert small_body.json()["error"]["code"] == "file_too_large"
    settings.MESH_FILE_PUSH_MAX_BYTES = 10
    big_body = user_client.post(
        "/api/v1/nodes/node-a/files/",
        {"path": "x", "file": SimpleUploadedFile("x", b"y" * 200_000)},
        format="multipart",
    )
    assert big_body.status_code == 413  # refused on Content-Length, before parsing
    assert big_body.json()["error"]["code"] == "file_too_large"
    assert (Task.objects.count(), staged(media)) == (0, [])


@pytest.mark.django_db
def test_service_counts_what_it_reads_not_what_it_is_told(user, node_a, media, settings) -> None:
    settings.MESH_FILE_PUSH_MAX_BYTES = 100
    node, _ = node_a
    with pytest.raises(services.FilePushTooLarge):
        services.file_push(actor=user, node=node, path="x", source=io.BytesIO(b"z" * 101), size=1)
    assert (Task.objects.count(), staged(media)) == (0, [])


@pytest.mark.django_db
def test_service_deletes_the_blob_when_dispatch_refuses(user, node_a, media, staff_user) -> None:
    node, _ = node_a
    services.node_update(actor=staff_user, node=node, data={"skill_config": {"files": False}})
    with pytest.raises(services.SkillDisabled):
        services.file_push(actor=user, node=node, path="x", source=io.BytesIO(b"data"))
    assert (Task.objects.count(), staged(media)) == (0, [])


# -------------------------------------------------------------------------------- protocol
@pytest.mark.django_db(transaction=True)
async def test_hub_streams_chunks_in_order_and_drops_the_blob_after_the_result(
    mesh_address, node_a, user, media
) -> None:
    node, token = node_a
    client = TestNode(mesh_address, "node-a", await join(mesh_address, "node-a", token))
    await client.connect()
    data = os.urandom(2 * CHUNK_BYTES + 123)
    task = await sync_to_async(services.file_push)(
        actor=user, node=node, path="big.bin", source=io.BytesIO(data)
    )
    assign = (await client.recv("task_assign")).task_assign
    assert assign.task_id == str(task.pk)
    payload = json.loads(assign.payload_json)
    assert "content" not in payload and payload["size"] == len(data)
    chunks = []
    while not chunks or not chunks[-1].eof:
        chunks.append((await client.recv("file_chunk")).file_chunk)
    assert [(c.task_id, c.offset, len(c.data), c.eof) for c in chunks] == [
        (str(task.pk), 0, CHUNK_BYTES, False),
        (str(task.pk), CHUNK_BYTES, CHUNK_BYTES, False),
        (str(task.pk), 2 * CHUNK_BYTES, 123, True),
    ]
    assert b"".join(c.data for c in chunks) == data
    assert await sync_to_async(staged)(media) == [payload["blob"].rsplit("/", 1)[1]]
    await client.send(task_started=mesh_pb2.TaskStarted(task_id=assign.task_id))
    await client.result(assign.task_id, exit_code=0)
    await client.recv("result_ack")
    assert await sync_to_async(staged)(media) == []
    await client.hang_up()


@pytest.mark.django_db(transaction=True)
async def test_a_real_agent_writes_the_pushed_file(tmp_path, mesh_address, node_a, user, media):
    node, token = node_a
    config = agent_config(tmp_path, mesh_address, "node-a", token)
    (tmp_path / "outside.bin").write_bytes(b"keep")
    data = os.urandom(5 * MIB + 17)
    async with running_agent(config) as agent:
        await asyncio.wait_for(agent.connected.wait(), timeout=15)
        push = sync_to_async(services.file_push)
        task = await push(actor=user, node=node, path="in/big.bin", source=io.BytesIO(data))
        done = await finished(task.pk)
        escape = await finished(
            (
                await push(
                    actor=user, node=node, path="../../outside.bin", source=io.BytesIO(b"evil")
                )
            ).pk
        )
    digest = hashlib.sha256(data).hexdigest()
    assert (done.status, done.result) == (
        TaskStatus.SUCCEEDED,
        {"path": "in/big.bin", "size": len(data), "sha256": digest, "mode": FILE_MODE},
    )
    written = config.workspace_root / "in" / "big.bin"
    assert hashlib.sha256(written.read_bytes()).hexdigest() == digest
    assert sorted(os.listdir(written.parent)) == ["big.bin"]  # no temporary file left
    assert (escape.status, escape.error_code) == (TaskStatus.FAILED, "path_outside_workspace")
    assert (tmp_path / "outside.bin").read_bytes() == b"keep"
    # Deleted right after the result's commit (which `finished` may see first).
    await wait_until_async(sync_to_async(lambda: staged(media) == []))


# ---------------------------------------------------------------------------- agent receiver
def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


#: The mode a pushed file gets (what a plain `open` would give it); an executable one: EXEC_MODE.
FILE_MODE, EXEC_MODE = 0o666 & ~_umask(), 0o777 & ~_umask()


def _chunks(data: bytes, size: int, task_id: str = "t") -> list[mesh_pb2.FileChunk]:
    pieces = [data[i : i + size] for i in range(0, len(data), size)] or [b""]
    return [
        mesh_pb2.FileChunk(task_id=task_id, offset=i * size, data=p, eof=i == len(pieces) - 1)
        for i, p in enumerate(pieces)
    ]


async def _receive(
    tmp_path: Path, payload: dict, chunks: list[mesh_pb2.FileChunk], timeout: float = 10.0
) -> dict:
    ws = Workspace(tmp_path / "ws")
    ws.ensure()
    sink = ChunkSink(maxsize=2)
    cancel = asyncio.Event()

    async def feed() -> None:
        for chunk in chunks:
            await sink.put(chunk)

    feeder = asyncio.create_task(feed())
    try:
        return await receive_push(ws, payload, sink, timeout=timeout, cancel=cancel)
    finally:
        sink.close()
        await feeder


def _payload(data: bytes, **extra: object) -> dict:
    return {
        "action": "write",
        "path": "f.bin",
        "blob": "mesh/push/x",
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        **extra,
    }


async def test_receiver_writes_through_a_bounded_queue(tmp_path: Path) -> None:
    data = os.urandom(100_000)
    result = await _receive(tmp_path, _payload(data), _chunks(data, 7_000))
    digest = hashlib.sha256(data).hexdigest()
    assert result == {"path": "f.bin", "size": 100_000, "sha256": digest, "mode": FILE_MODE}
    assert (tmp_path / "ws" / "f.bin").read_bytes() == data
    empty = await _receive(tmp_path, _payload(b"", path="empty"), _chunks(b"", 10))
    assert (empty["size"], (tmp_path / "ws" / "empty").read_bytes()) == (0, b"")


async def test_receiver_writes_the_executable_bit_the_hub_sends(tmp_path: Path) -> None:
    """The executable bit is synced: `mode` with the owner's x bit makes an executable file
    (the umask applies); a later push without it makes the file plain again."""
    script = b"#!/bin/sh\necho ran\n"
    result = await _receive(
        tmp_path, _payload(script, path="run.sh", mode=0o755), _chunks(script, 8)
    )
    target = tmp_path / "ws" / "run.sh"
    assert (result["mode"], stat.S_IMODE(target.stat().st_mode)) == (EXEC_MODE, EXEC_MODE)
    assert subprocess.run([str(target)], capture_output=True, check=True).stdout == b"ran\n"
    again = await _receive(
        tmp_path, _payload(script, path="run.sh", mode=0o644), _chunks(script, 8)
    )
    assert (again["mode"], stat.S_IMODE(target.stat().st_mode)) == (FILE_MODE, FILE_MODE)
    for odd in (True, "0o755", None):  # not an int: a plain file
        plain = await _receive(
            tmp_path, _payload(script, path="odd.sh", mode=odd), _chunks(script, 8)
        )
        assert plain["mode"] == FILE_MODE


@pytest.mark.parametrize(
    ("case", "code"),
    [
        ("short", "size_mismatch"),
        ("long", "size_mismatch"),
        ("hash", "checksum_mismatch"),
        ("gap", "push_out_of_order"),
        ("no_eof", "push_incomplete"),
    ],
)
async def test_receiver_refuses_a_bad_push_and_leaves_the_target(
    tmp_path: Path, case: str, code: str
) -> None:
    data = os.urandom(30_000)
    payload = _payload(data)
    chunks = _chunks(data, 10_000)
    if case == "short":
        payload["size"] = len(data) + 1
    elif case == "long":
        payload["size"] = len(data) - 1
    elif case == "hash":
        payload["sha256"] = "0" * 64
    elif case == "gap":
        del chunks[1]
    else:
        chunks[-1].eof = False
    (tmp_path / "ws").mkdir()
    (tmp_path / "ws" / "f.bin").write_bytes(b"old")
    with pytest.raises(FileSkillError) as info:
        await _receive(tmp_path, payload, chunks, timeout=0.5 if case == "no_eof" else 10.0)
    assert info.value.code == code
    assert os.listdir(tmp_path / "ws") == ["f.bin"]
    assert (tmp_path / "ws" / "f.bin").read_bytes() == b"old"


async def test_receiver_refuses_paths_outside_the_workspace_and_stops_on_cancel(
    tmp_path: Path,
) -> None:
    with pytest.raises(FileSkillError) as info:
        await _receive(tmp_path, _payload(b"x", path="../x"), _chunks(b"x", 1))
    assert (info.value.code, info.value.rejected) == ("path_outside_workspace", True)
    assert not (tmp_path / "x").exists()
    ws = Workspace(tmp_path / "ws")
    cancel = asyncio.Event()
    cancel.set()
    with pytest.raises(PushCancelled):
        await receive_push(ws, _payload(b"x"), ChunkSink(), timeout=10, cancel=cancel)
    assert os.listdir(tmp_path / "ws") == []
