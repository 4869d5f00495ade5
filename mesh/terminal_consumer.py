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
- Keystrokes and resizes go to the runmesh holding the node's stream as live doorbells; when
  that stream is in this process, keystrokes, resizes and output skip the channel layer
  (`mesh.services.terminal_local`).
"""

from __future__ import annotations

import asyncio
from collections import deque
from typing import Any

from channels.db import database_sync_to_async

from accounts.context import AuditContext
from cortex import errors
from cortex.consumers import CortexConsumer, Envelope
from mesh import events
from mesh import selectors as live
from mesh.selectors import terminals as terminal_selectors
from mesh.services import terminal_local, terminals

#: Chunks replayed per frame (a frame stays well under a megabyte).
REPLAY_CHUNKS = 64


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
    session_id: str | None = None
    last_seq: int = 0
    exited: bool = False
    #: Direct output frames waiting while a gap is filled from storage (`_local_output`).
    _waiting: deque[dict[str, Any]]
    _filling: asyncio.Task[None] | None = None
    _holding_output: bool = False

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
        terminals.terminal_open_ring(node_id=self.node_id)  # before the first keystroke
        await self._join(session_id, 0)

    async def on_terminal_attach(self, envelope: Envelope) -> None:
        self._no_session_yet()
        after = envelope.payload.get("after_seq", 0)
        if isinstance(after, bool) or not isinstance(after, int) or after < 0:
            raise errors.ValidationFailed(fields={"after_seq": ["A non-negative integer."]})
        session_id = await _attach(
            self.user.pk, self.node_id, envelope.payload.get("session"), self.audit_context
        )
        self._holding_output = True  # live frames wait for the replay
        try:
            await self._join(session_id, after)
            await self._catch_up(None)
        finally:
            self._holding_output = False
            self._fill_soon()

    async def on_terminal_input(self, envelope: Envelope) -> None:
        data = envelope.payload.get("data")
        if not isinstance(data, str):
            raise errors.ValidationFailed(fields={"data": ["A string is required."]})
        await terminals.terminal_input(node_id=self.node_id, session_id=self._session(), data=data)

    async def on_terminal_resize(self, envelope: Envelope) -> None:
        cols, rows = _size(envelope)
        await terminals.terminal_resize(
            node_id=self.node_id, session_id=self._session(), cols=cols, rows=rows
        )

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
        self._waiting = deque()
        terminal_local.watcher_attach(session_id, self._local_output)
        self.emit({"type": "terminal.opened", "session": session_id, "seq": after})

    async def disconnect(self, code: int) -> None:
        if self.session_id is not None:
            terminal_local.watcher_detach(self.session_id, self._local_output)
        if self._filling is not None:
            self._filling.cancel()
        await super().disconnect(code)

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

    def _local_output(self, event: dict[str, Any]) -> None:
        """An output frame from this process's stream of the node (no channel-layer hop): the
        next one in order goes out at once; after a gap, frames wait in order for the fill."""
        if self._filling is None and not self._holding_output:
            seq = int(event.get("seq") or 0)
            if seq <= self.last_seq:
                return
            if seq == self.last_seq + 1:
                self.last_seq = seq
                self.emit({"type": "terminal.output", "seq": seq, "data": event.get("data", "")})
                return
        self._waiting.append(event)
        self._fill_soon()

    def _fill_soon(self) -> None:
        if self._filling is None and not self._holding_output and self._waiting:
            self._filling = asyncio.get_running_loop().create_task(self._fill())

    async def _fill(self) -> None:
        try:
            while self._waiting and not self.closing:
                await self._live_output(self._waiting.popleft())
        finally:
            self._filling = None

    async def terminal_output(self, event: dict[str, Any]) -> None:
        if terminal_local.from_here(event):
            return  # this socket had it directly (`_local_output`)
        await self._live_output(event)

    async def _live_output(self, event: dict[str, Any]) -> None:
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
