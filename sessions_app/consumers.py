"""`/ws/sessions/{id}/`: replay stored frames after `?after_seq=N`, then stream live ones."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from cortex import errors
from cortex.consumers import Envelope, OutageSafe
from cortex.ws_refusal import CLOSE_FORBIDDEN, CLOSE_UNAUTHENTICATED, refuse_socket
from sessions_app import selectors
from sessions_app.events import session_group

logger = logging.getLogger("cortex.sessions")

REPLAY_BATCH = 1000


@database_sync_to_async
def _session_for(user: Any, session_id: str) -> int:  # Channels' lazy scope user
    return selectors.session_get_for_user(user=user, session_id=session_id).pk


@database_sync_to_async
def _frames_after(session_id: int, after_seq: int) -> list[dict[str, Any]]:
    return selectors.frames_after(session_id=session_id, after_seq=after_seq, limit=REPLAY_BATCH)


def _after_seq(scope: Mapping[str, Any]) -> int:
    query = parse_qs((scope.get("query_string") or b"").decode("latin-1"))
    try:
        return max(0, int((query.get("after_seq") or ["0"])[0]))
    except ValueError:
        return 0


class SessionConsumer(OutageSafe, AsyncJsonWebsocketConsumer):
    """Read-only stream of one chat session's frames, each with its `seq`, never twice."""

    session_id: int = 0
    group: str = ""
    last_seq: int = 0

    async def connect(self) -> None:
        user = self.scope.get("user")
        if user is None or not user.is_authenticated:
            await refuse_socket(self, code=CLOSE_UNAUTHENTICATED, reason="not_signed_in")
            return
        try:
            self.session_id = await _session_for(
                user, self.scope["url_route"]["kwargs"]["session_id"]
            )
        except errors.NotFound:
            await refuse_socket(self, code=CLOSE_FORBIDDEN, reason="no_access")
            return
        self.group = session_group(self.session_id)
        # Join before replaying so nothing falls between the replay and the live frames.
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        self.last_seq = _after_seq(self.scope)
        while True:
            frames = await _frames_after(self.session_id, self.last_seq)
            for frame in frames:
                await self._send_frame(frame)
            if len(frames) < REPLAY_BATCH:
                break

    async def disconnect(self, code: int) -> None:
        if self.group:
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive(
        self, text_data: str | None = None, bytes_data: bytes | None = None, **kwargs: Any
    ) -> None:
        """Clients only listen here; actions go through REST.

        A frame that cannot be parsed (binary, not JSON, not an object with a `type`) is
        `invalid_frame`, parsed by the same envelope parser as every other socket; any other
        frame is `unsupported_frame`.
        """
        try:
            Envelope.parse(text_data)
        except errors.CortexError as exc:
            error = {"code": exc.code, "message": exc.message}
        else:
            error = {
                "code": "unsupported_frame",
                "message": "This stream is read-only; use the REST API to act.",
            }
        await self.send_json({"type": "error", "seq": self.last_seq, "error": error})

    async def session_frame(self, event: dict[str, Any]) -> None:
        await self._send_frame(event["frame"])

    async def _send_frame(self, frame: dict[str, Any]) -> None:
        seq = int(frame.get("seq") or 0)
        if seq <= self.last_seq:
            return  # already sent by the replay
        if seq > self.last_seq + 1:
            # A dropped doorbell: fill the gap from the database, in order.
            for missing in await _frames_after(self.session_id, self.last_seq):
                if int(missing["seq"]) >= seq:
                    break
                self.last_seq = int(missing["seq"])
                await self.send_json(missing)
        self.last_seq = seq
        await self.send_json(frame)
