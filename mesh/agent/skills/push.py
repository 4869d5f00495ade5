"""Receiving a pushed file: FileChunk messages into a temporary file in the jail, then a rename.

The hub sends a files `write` whose payload names a staged blob with its size and sha256, then
the blob's bytes as FileChunk messages. They are written next to the target (same directory,
so the final rename is atomic), checked against the size and hash, and renamed into place; on
any failure the temporary file is removed and the target is untouched. A payload `mode` with the
owner's executable bit makes an executable file (0o777 less the umask, as git checks out one).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import os
import re
import secrets
import stat
from typing import Any, BinaryIO

from ..pb import mesh_pb2
from ..workspace import Workspace
from .bundle import BUNDLE_TEMP, bundle_folder, bundle_write, file_mode
from .files import FileSkillError, write_target
from .watch import note_pushed

#: Chunks queued per push before the stream reader waits (about 8 MiB): a slow disk slows the
#: hub down through gRPC flow control instead of filling memory.
SINK_CHUNKS = 8
SHA256 = re.compile(r"^[0-9a-f]{64}$")


class PushCancelled(Exception):
    """The task was cancelled while its file was arriving."""


class ChunkSink:
    """The chunks of one push on their way from the stream reader to the task."""

    def __init__(self, maxsize: int = SINK_CHUNKS) -> None:
        self.queue: asyncio.Queue[mesh_pb2.FileChunk] = asyncio.Queue(maxsize)
        self.closed = False
        #: Set when the stream carrying the chunks has closed: the rest never comes (the hub
        #: does not resume a push on another stream), so the push fails now, not at its timeout.
        self.stream_gone = asyncio.Event()

    async def put(self, chunk: mesh_pb2.FileChunk) -> None:
        """Queue a chunk, waiting while the queue is full; dropped once the task has ended."""
        if not self.closed:
            await self.queue.put(chunk)

    def close(self) -> None:
        """The task ended: drop what is queued (which also frees a reader waiting to put)."""
        self.closed = True
        while not self.queue.empty():
            self.queue.get_nowait()


def _expected(payload: dict[str, Any]) -> tuple[int, str]:
    size, digest = payload.get("size"), payload.get("sha256")
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise FileSkillError("invalid_input", "size must be a non-negative integer")
    if not isinstance(digest, str) or not SHA256.match(digest):
        raise FileSkillError("invalid_input", "sha256 must be 64 lowercase hex digits")
    return size, digest


def _append(fh: BinaryIO, digest: Any, data: bytes) -> None:
    fh.write(data)
    digest.update(data)


async def _next(sink: ChunkSink, cancel: asyncio.Event, timeout: float) -> mesh_pb2.FileChunk:
    if cancel.is_set():
        raise PushCancelled
    if sink.queue.qsize():
        return sink.queue.get_nowait()
    if sink.stream_gone.is_set():
        raise TimeoutError
    getting = asyncio.ensure_future(sink.queue.get())
    cancelled = asyncio.ensure_future(cancel.wait())
    gone = asyncio.ensure_future(sink.stream_gone.wait())
    try:
        done, _ = await asyncio.wait(
            {getting, cancelled, gone},
            timeout=max(timeout, 0.0),
            return_when=asyncio.FIRST_COMPLETED,
        )
    finally:
        cancelled.cancel()
        gone.cancel()
        if not getting.done():
            getting.cancel()
    if getting in done:
        return getting.result()
    if cancelled in done:
        raise PushCancelled
    raise TimeoutError


async def receive_push(
    ws: Workspace,
    payload: dict[str, Any],
    sink: ChunkSink,
    *,
    timeout: float,
    cancel: asyncio.Event,
) -> dict[str, Any]:
    """Write the pushed file to payload["path"]; returns {"path", "size", "sha256"}. A
    `write_many` push is a bundle of small files for the folder payload["path"]: it is received
    the same way (temporary name, size and hash checked), then unpacked (`bundle.bundle_write`);
    returns {"path", "files": [{"path", "size", "sha256"}]}.

    Raises FileSkillError (`rejected` for the jail) with codes `push_out_of_order`,
    `size_mismatch`, `checksum_mismatch`, `push_incomplete` (no eof before `timeout`), or
    PushCancelled.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    size, expected = _expected(payload)
    many = payload.get("action") == "write_many"
    if many:
        folder = await asyncio.to_thread(bundle_folder, ws, payload)
        target, shown = folder / BUNDLE_TEMP, ws.relative(folder)
    else:
        target = await asyncio.to_thread(write_target, ws, payload)
        shown = ws.relative(target)
    temp = target.parent / f".{target.name}.push-{secrets.token_hex(6)}"
    digest = hashlib.sha256()
    received = 0
    try:
        try:
            await asyncio.to_thread(target.parent.mkdir, parents=True, exist_ok=True)
            fd = os.open(
                temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, file_mode(payload)
            )
        except OSError as exc:
            raise FileSkillError("os_error", f"write {shown}: {exc.strerror or exc}") from exc
        with os.fdopen(fd, "wb", buffering=0) as fh:
            while True:
                try:
                    chunk = await _next(sink, cancel, deadline - loop.time())
                except TimeoutError as exc:
                    raise FileSkillError(
                        "push_incomplete",
                        f"Received {received} of {size} bytes of {shown} before the timeout.",
                    ) from exc
                if chunk.offset != received:
                    raise FileSkillError(
                        "push_out_of_order",
                        f"A chunk at offset {chunk.offset} arrived after {received} bytes.",
                    )
                if received + len(chunk.data) > size:
                    raise FileSkillError(
                        "size_mismatch", f"More than the announced {size} bytes arrived."
                    )
                if chunk.data:
                    try:
                        await asyncio.to_thread(_append, fh, digest, chunk.data)
                    except OSError as exc:
                        raise FileSkillError(
                            "os_error", f"write {shown}: {exc.strerror or exc}"
                        ) from exc
                    received += len(chunk.data)
                if chunk.eof:
                    break
        if received != size:
            raise FileSkillError(
                "size_mismatch", f"{received} bytes arrived; {size} were announced."
            )
        if digest.hexdigest() != expected:
            raise FileSkillError("checksum_mismatch", "The file's sha256 does not match.")
        if many:
            written = await asyncio.to_thread(bundle_write, ws, folder, temp)
            return {"path": shown, "files": written}
        try:
            os.replace(temp, target)
        except OSError as exc:
            raise FileSkillError("os_error", f"write {shown}: {exc.strerror or exc}") from exc
        note_pushed(target, expected)  # a watch of this folder does not echo it back
        mode = stat.S_IMODE(os.lstat(target).st_mode)
        return {"path": shown, "size": received, "sha256": expected, "mode": mode}
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temp)
