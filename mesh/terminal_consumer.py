"""`/ws/nodes/{node_id}/terminal/`: an interactive terminal on a node, through the hub.

- Refused before accept: 4401 anonymous, 4403 node not visible (also when it does not exist).
- Client frames: `terminal.open` `{cols, rows}` or `terminal.attach` `{session, after_seq}` (one
  session per socket), then `terminal.input` `{data}`, `terminal.resize` `{cols, rows}`,
  `terminal.close`.
- Server frames: `terminal.opened` `{session, seq}` (seq: what follows continues after it),
  `terminal.output` `{seq, data}` (seq of the newest chunk the frame carries), `terminal.exit`
  `{code, error?}`; failures as `error` frames (`terminals_not_allowed`, `node_offline`,
  `terminal_not_found`, ...).
- Output is stored before it is announced, so an attach replays from the database what was
  missed (after `after_seq`), then live frames follow; a gap in the live frames (the channel
  layer dropped some) is filled from the database. A client that falls behind gets `resync`
  and attaches again with the last seq it has.
- Keystrokes and resizes are stored in order, then rung to the runmesh holding the node's stream;
  typed while none holds it (a hub restart, a node reconnecting) they are sent when the stream
  joins. Errors: `terminal_ended`, `terminal_input_backlog` (the node has been away too long).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from functools import cached_property
from typing import Any

from channels.db import database_sync_to_async

from accounts.context import AuditContext
from cortex import errors
from cortex.consumers import CortexConsumer, Envelope
from mesh import events
from mesh import selectors as live
from mesh.selectors import terminals as terminal_selectors
from mesh.services import terminals

#: Chunks replayed per frame (a frame stays well under a megabyte).
REPLAY_CHUNKS = 64
#: Inputs waiting to be rung and stored per socket (beyond: the socket is not read).
KEYS_QUEUED = 64
#: Seconds an input waits to be stored with those that follow (it was rung live already).
KEYS_STORE_DELAY = 0.05
#: Longest wait, when a socket closes, for its inputs to be stored.
KEYS_DRAIN_SECONDS = 10.0

logger = logging.getLogger("cortex.ws")


@database_sync_to_async
def _open(user_id: int, node_id: str, cols: Any, rows: Any, context: AuditContext) -> str:
    user = live.user_fresh(user_id=user_id)
    session = terminals.terminal_open(
        actor=user, node_id=node_id, cols=cols, rows=rows, audit_context=context
    )
    return str(session.pk)


@database_sync_to_async
def _attach(user_id: int, node_id: str, session_id: Any, context: AuditContext) -> str:
    user = live.user_fresh(user_id=user_id)
    session = terminals.terminal_attach(
        actor=user, node_id=node_id, session_id=session_id, audit_context=context
    )
    return str(session.pk)


@database_sync_to_async
def _close(user_id: int, node_id: str, session_id: str, context: AuditContext) -> None:
    user = live.user_fresh(user_id=user_id)
    session = terminal_selectors.terminal_get_for_user(
        user=user, node_id=node_id, session_id=session_id
    )
    terminals.terminal_close(actor=user, session=session, audit_context=context)


@database_sync_to_async
def _after(session_id: str, after_seq: int, before_seq: int | None) -> dict[str, Any]:
    return terminal_selectors.terminal_replay(
        session_id=session_id, after_seq=after_seq, before_seq=before_seq, limit=REPLAY_CHUNKS
    )


def _size(envelope: Envelope) -> tuple[Any, Any]:
    return envelope.payload.get("cols", 80), envelope.payload.get("rows", 24)


class TerminalConsumer(CortexConsumer):
    """One socket, at most one terminal session on one node."""

    inbound = frozenset(
        {"terminal.open", "terminal.attach", "terminal.input", "terminal.resize", "terminal.close"}
    )
    audit_transport = "console"

    node_id: str = ""
    _keys: asyncio.Queue[dict[str, Any]] | None = None
    _keys_task: asyncio.Task[None] | None = None
    #: This socket as a writer of inputs: its inputs are `<_writer>.<n>`, n from 1.
    _n: int = 0

    @cached_property
    def _writer(self) -> str:
        return terminals.new_writer()

    session_id: str | None = None
    last_seq: int = 0
    exited: bool = False

    async def authorize(self) -> None:
        self.node_id = str(self.scope["url_route"]["kwargs"]["node_id"])
        if not await database_sync_to_async(live.node_visible)(
            user_id=self.user.pk, node_id=self.node_id
        ):
            raise errors.NotFound("No such node.")

    def allowed(self) -> bool:
        return live.node_visible(user_id=self.user.pk, node_id=self.node_id)

    def access_key(self) -> tuple[str, int, str]:
        return ("node", self.user.pk, self.node_id)

    # --- client frames -------------------------------------------------------------------------

    async def on_terminal_open(self, envelope: Envelope) -> None:
        self._no_session_yet()
        cols, rows = _size(envelope)
        session_id = await _open(self.user.pk, self.node_id, cols, rows, self.audit_context)
        await self._join(session_id, 0)

    async def on_terminal_attach(self, envelope: Envelope) -> None:
        self._no_session_yet()
        after = envelope.payload.get("after_seq", 0)
        if isinstance(after, bool) or not isinstance(after, int) or after < 0:
            raise errors.ValidationFailed(fields={"after_seq": ["A non-negative integer."]})
        session_id = await _attach(
            self.user.pk, self.node_id, envelope.payload.get("session"), self.audit_context
        )
        await self._join(session_id, after)
        await self._catch_up(None)

    async def on_terminal_input(self, envelope: Envelope) -> None:
        data = envelope.payload.get("data")
        if not isinstance(data, str):
            raise errors.ValidationFailed(fields={"data": ["A string is required."]})
        session_id = self._session()
        self._n += 1
        await self._keys_send(
            terminals.terminal_input_bell(
                node_id=self.node_id,
                session_id=session_id,
                data=data,
                writer=self._writer,
                n=self._n,
            )
        )

    async def on_terminal_resize(self, envelope: Envelope) -> None:
        cols, rows = _size(envelope)
        bell = terminals.terminal_resize_bell(
            node_id=self.node_id,
            session_id=self._session(),
            cols=cols,
            rows=rows,
            writer=self._writer,
            n=self._n + 1,
        )
        self._n += 1
        await self._keys_send(bell)

    async def _keys_send(self, bell: dict[str, Any]) -> None:
        """Ring an input live at once (in order: this handler runs one frame at a time), then
        hand it to this socket's store task, which stores inputs in small batches a moment
        later, off the echo's path. A full queue holds the socket back."""
        await terminals.terminal_keys_ring(bell)
        if self._keys is None:
            self._keys = asyncio.Queue(KEYS_QUEUED)
            self._keys_task = asyncio.create_task(self._keys_loop(self._keys))
        await self._keys.put(bell)

    async def _keys_loop(self, queue: asyncio.Queue[dict[str, Any]]) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [await queue.get()]
            deadline = loop.time() + KEYS_STORE_DELAY
            while len(batch) < KEYS_QUEUED and (left := deadline - loop.time()) > 0:
                try:
                    batch.append(await asyncio.wait_for(queue.get(), left))
                except TimeoutError:
                    break
            try:
                await terminals.terminal_keys_commit(batch)
            except Exception as exc:  # shown to the client, as a handler's error would be
                if not isinstance(exc, errors.CortexError):
                    logger.exception("storing terminal input failed")
                self.send_error(exc)
            finally:
                for _ in batch:
                    queue.task_done()

    async def disconnect(self, code: int) -> None:
        """Inputs typed before the socket closed are still stored (bounded wait)."""
        if self._keys is not None and self._keys_task is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self._keys.join(), timeout=KEYS_DRAIN_SECONDS)
            self._keys_task.cancel()
        await super().disconnect(code)

    async def on_terminal_close(self, envelope: Envelope) -> None:
        await _close(self.user.pk, self.node_id, self._session(), self.audit_context)

    def _no_session_yet(self) -> None:
        if self.session_id is not None:
            raise errors.Conflict(
                "This socket has a terminal already.", code="terminal_already_open"
            )

    def _session(self) -> str:
        if self.session_id is None:
            raise errors.Conflict("Open or attach a terminal first.", code="no_terminal")
        return self.session_id

    async def _join(self, session_id: str, after: int) -> None:
        group = terminals.terminal_group(session_id)
        await self.channel_layer.group_add(group, self.channel_name)
        self._joined.append(group)
        self.session_id = session_id
        self.last_seq = after
        self.emit({"type": "terminal.opened", "session": session_id, "seq": after})

    async def _catch_up(self, before: int | None) -> None:
        """Send stored output after `last_seq` (up to `before`), then the exit if it ended."""
        assert self.session_id is not None  # noqa: S101  # joined first
        while not self.closing:
            page = await _after(self.session_id, self.last_seq, before)
            chunks = page["chunks"]
            if chunks:
                self._output(chunks[-1][0], b"".join(c[2] for c in chunks))
            if len(chunks) < REPLAY_CHUNKS:
                if page["exit"] is not None and before is None:
                    self._emit_exit(page["exit"])
                return
            while self._queued_bytes > self.max_bytes // 4 and not self.closing:
                await asyncio.sleep(0.01)  # let the client take what is queued

    def _output(self, seq: int, data: bytes) -> None:
        self.last_seq = seq
        self.emit({"type": "terminal.output", "seq": seq, "data": terminal_selectors.text_of(data)})

    # --- group frames (named after their type) -------------------------------------------------

    async def terminal_output(self, event: dict[str, Any]) -> None:
        seq = int(event.get("seq") or 0)
        first = int(event.get("first_seq") or seq)
        if seq <= self.last_seq:
            return  # sent already (replayed)
        if first <= self.last_seq:  # overlaps what was replayed: the rest comes from storage
            await self._catch_up(seq + 1)
            return
        for _ in range(40):  # frames the layer dropped (or not yet stored): fill from storage
            if first <= self.last_seq + 1:
                break
            await self._catch_up(first)
            if first > self.last_seq + 1:
                await asyncio.sleep(0.025)  # live frames go out before their rows commit
        self.last_seq = seq
        self.emit({"type": "terminal.output", "seq": seq, "data": event.get("data", "")})

    async def terminal_exit(self, event: dict[str, Any]) -> None:
        self._emit_exit(event)

    def _emit_exit(self, ended: dict[str, Any]) -> None:
        if self.exited:
            return
        self.exited = True
        frame: dict[str, Any] = {"type": "terminal.exit", "seq": events.frame_seq()}
        frame["code"] = ended.get("code")
        if ended.get("error"):
            frame["error"] = ended["error"]
        self.emit(frame)
