"""Base of every WebSocket consumer: typed envelopes, error frames, access re-checks, send queue.

Refused connects are accepted, audited and closed at once (`cortex.ws_refusal`); close codes of
every Cortex WebSocket:
- 4401: not authenticated, or authentication lost while open (signed out, deactivated, session
  gone); re-checked every `CORTEX_WS_RECHECK_SECONDS` (2 s), so within 5 s at worst.
- 4403: the object is not visible to the user, or the grant was lost while open. The same code
  is used for "does not exist", so a socket never reveals whether an object exists.
- 1011: the re-check itself failed (database unreachable); the client reconnects later.
- 1013: the database or the channel layer was down while the socket opened (try again later);
  a reconnecting client resumes by `seq` (stored frames, REST), so nothing is lost.

Outgoing frames go through a bounded queue drained by a sender task, started when a frame is
queued and ended when the queue is empty (an idle socket holds no task). A client that falls
behind (more than WS_QUEUE_FRAMES frames or WS_QUEUE_BYTES bytes waiting) loses the
queue and gets one `{"type": "resync"}` frame: it refetches state over REST. Memory per socket
is therefore bounded whatever the client does.

Re-checks run from one timer per event loop (`cortex.ws_recheck`), not one task per socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections import deque
from collections.abc import Hashable
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar

from channels.exceptions import StopConsumer
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings

from accounts.context import AuditContext, Transport
from cortex import errors, faults, metrics, ws_recheck
from cortex.patches.channels_dispatch import HoplessDispatch
from cortex.ws_refusal import CLOSE_FORBIDDEN, CLOSE_UNAUTHENTICATED, refuse_socket

if TYPE_CHECKING:
    from asgiref.typing import WebSocketConnectEvent, WebSocketDisconnectEvent

logger = logging.getLogger("cortex.ws")

#: The access re-check itself failed (database down): the client reconnects later.
CLOSE_SERVER_ERROR = 1011

#: Frame types the base sends itself.
ERROR = "error"
RESYNC = "resync"


@dataclass(frozen=True)
class Envelope:
    """One client frame: `{"type": ..., "seq"?: N, ...payload}`."""

    type: str
    seq: int | None = None
    payload: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def parse(cls, text: str | None) -> Envelope:
        """Parse a text frame; raises ValidationFailed (`invalid_frame`) on anything else."""
        if text is None:
            raise errors.ValidationFailed("Frames are JSON text.", code="invalid_frame")
        if len(text) > 65536:
            raise errors.ValidationFailed("The frame is too large.", code="frame_too_large")
        try:
            content = json.loads(text)
        except (ValueError, RecursionError):  # RecursionError: nested too deeply to read
            raise errors.ValidationFailed("The frame is not JSON.", code="invalid_frame") from None
        if not isinstance(content, dict) or not isinstance(content.get("type"), str):
            raise errors.ValidationFailed(
                "A frame is an object with a string `type`.", code="invalid_frame"
            )
        seq = content.get("seq")
        if seq is not None and (isinstance(seq, bool) or not isinstance(seq, int)):
            raise errors.ValidationFailed("`seq` must be an integer.", code="invalid_frame")
        payload = {k: v for k, v in content.items() if k not in ("type", "seq")}
        return cls(type=content["type"], seq=seq, payload=payload)


def error_body(exc: BaseException) -> dict[str, Any]:
    """The `error` object of an error frame (same shape as the REST error body)."""
    if isinstance(exc, errors.CortexError):
        body: dict[str, Any] = {"code": exc.code, "message": exc.message}
        if exc.fields:
            body["fields"] = exc.fields
        return body
    return {"code": "internal_error", "message": "The request could not be completed."}


def _session_user_id(session_key: str) -> int | None:
    """The user a stored browser session still signs in (hash and active flag checked)."""
    from importlib import import_module

    from django.contrib.auth import get_user

    engine = import_module(settings.SESSION_ENGINE)

    class _Request:  # what django.contrib.auth.get_user reads
        session = engine.SessionStore(session_key)

    user = get_user(_Request())  # type: ignore[arg-type]
    return user.pk if user.is_authenticated else None


def _active_user(user_id: int) -> Any:
    """The user if still active (ModelBackend refuses inactive ones), else None."""
    from django.contrib.auth.backends import ModelBackend

    return ModelBackend().get_user(user_id)


#: A dependency (database, channel layer) was down while the socket opened: try again later.
CLOSE_TRY_AGAIN = 1013


class OutageSafe:
    """Mixin for every consumer: an outage while connecting closes cleanly, and open sockets
    are counted for metrics.

    A database or Redis outage during `connect()` would otherwise end the handshake with a
    server error; here the socket is accepted and closed with 1013, and the client reconnects.
    """

    _counted: bool = False

    async def websocket_connect(self, message: WebSocketConnectEvent) -> None:
        try:
            await super().websocket_connect(message)  # type: ignore[misc]
        except Exception as exc:
            if faults.unavailable_for(exc) is None:
                raise
            logger.warning("websocket connect: %s unavailable; closing with 1013", exc.__class__)
            with contextlib.suppress(Exception):  # accepted already, or the client is gone
                await self.accept()
            await self.close(code=CLOSE_TRY_AGAIN)  # type: ignore[attr-defined]

    async def accept(self, subprotocol: str | None = None, headers: Any = None) -> None:
        await super().accept(subprotocol, headers)  # type: ignore[misc]
        if not self._counted:
            self._counted = True
            metrics.WS_CONNECTIONS.labels(route=type(self).__name__).inc()

    async def websocket_disconnect(self, message: WebSocketDisconnectEvent) -> None:
        if self._counted:
            self._counted = False
            metrics.WS_CONNECTIONS.labels(route=type(self).__name__).dec()
        try:
            await super().websocket_disconnect(message)  # type: ignore[misc]
        except Exception as exc:  # leaving groups on a layer that is down: nothing to leave
            if faults.unavailable_for(exc) is None:
                raise
            raise StopConsumer from None


class CortexConsumer(OutageSafe, HoplessDispatch, AsyncWebsocketConsumer):
    """Authenticate, authorize and join groups before accept; then serve typed frames.

    Subclasses implement `authorize()` (raise a CortexError to refuse with 4403),
    `group_names()`, optionally `allowed()` with `access_key()` (re-checked every
    `recheck_seconds`), `opened()` (first frames), and `on_<type>` handlers for the client
    frame types listed in `inbound` (dots become underscores).
    """

    inbound: ClassVar[frozenset[str]] = frozenset()
    #: What this socket's actions are recorded as in the audit log (`AuditEvent.source`).
    audit_transport: ClassVar[Transport] = "ws"

    user: Any = None
    _joined: list[str]
    _queue: deque[str] | None = None  # created by the first frame, dropped once sent
    _queued_bytes: int = 0
    _closing: bool = False
    _sender: asyncio.Task[None] | None = None
    #: Frames wait in the queue until `opened()` has queued the first ones (snapshot, replay).
    _holding: bool = True
    _max_frames: int = 0
    _max_bytes: int = 0

    @cached_property
    def audit_context(self) -> AuditContext:
        """The socket's transport, client address and agent, built once for services."""
        return AuditContext.from_scope(self.scope, self.audit_transport)

    # --- settings (read per socket so tests and operators can tune them) -----------------------

    @property
    def recheck_seconds(self) -> float:
        return float(settings.WS_RECHECK_SECONDS)

    @property
    def max_frames(self) -> int:
        return int(settings.WS_QUEUE_FRAMES)

    @property
    def max_bytes(self) -> int:
        return int(settings.WS_QUEUE_BYTES)

    # --- hooks ---------------------------------------------------------------------------------

    async def authorize(self) -> None:
        """Raise a CortexError when the user may not open this socket (closed with 4403)."""

    def group_names(self) -> list[str]:
        return []

    def allowed(self) -> bool:
        """Whether the grant behind this socket still holds (besides authentication).

        Runs in the database thread, for every socket whose `access_key()` is None and once per
        re-check round for each distinct key.
        """
        return True

    def access_key(self) -> Hashable | None:
        """What `allowed()` depends on: sockets with equal keys share one answer per round."""
        return None

    async def opened(self) -> None:
        """Send the first frames after accept."""

    async def rechecked(self) -> None:
        """Called after every successful periodic re-check (e.g. to refresh a node list)."""

    # --- lifecycle -----------------------------------------------------------------------------

    async def connect(self) -> None:
        self._joined = []
        self._max_frames = self.max_frames
        self._max_bytes = self.max_bytes
        user = self.scope.get("user")
        if user is None or not user.is_authenticated or not user.is_active:
            self._closing = True
            await refuse_socket(self, code=CLOSE_UNAUTHENTICATED, reason="not_signed_in")
            return
        self.user = user
        try:
            await self.authorize()
        except errors.CortexError:
            self._closing = True
            await refuse_socket(self, code=CLOSE_FORBIDDEN, reason="no_access")
            return
        for group in self.group_names():
            await self.channel_layer.group_add(group, self.channel_name)
            self._joined.append(group)
        await self.accept()
        await self.opened()
        self._holding = False
        if self._closing:
            return
        if self._queue:
            self._sender = asyncio.get_running_loop().create_task(self._drain())
        ws_recheck.register(self, self.recheck_seconds)

    async def disconnect(self, code: int) -> None:
        self._closing = True
        ws_recheck.unregister(self)
        sender = self._sender
        if sender is not None:
            sender.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await sender
        for group in getattr(self, "_joined", []):
            await self.channel_layer.group_discard(group, self.channel_name)
        self._joined = []

    async def shut(self, code: int) -> None:
        """Close from the server side, dropping whatever is still queued."""
        if self._closing:
            return
        self._closing = True
        ws_recheck.unregister(self)
        self._queue = None
        self._queued_bytes = 0
        await self.close(code=code)

    @property
    def closing(self) -> bool:
        return self._closing

    # --- inbound -------------------------------------------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        envelope: Envelope | None = None
        try:
            envelope = Envelope.parse(text_data)
            if envelope.type not in self.inbound:
                raise errors.ValidationFailed(
                    f"Unsupported frame type {envelope.type[:40]!r}.", code="unsupported_frame"
                )
            handler = getattr(self, "on_" + envelope.type.replace(".", "_"))
            await handler(envelope)
        except Exception as exc:  # every failure becomes one error frame, sent from here
            if not isinstance(exc, errors.CortexError):
                logger.exception("websocket handler failed")
            self.send_error(exc, reply_to=envelope.seq if envelope else None)

    # --- outbound ------------------------------------------------------------------------------

    def emit(self, frame: dict[str, Any]) -> None:
        """Queue one frame; on overflow replace the queue with a single resync frame."""
        if self._closing:
            return
        text = json.dumps(frame, separators=(",", ":"), default=str)
        queue = self._queue
        if queue is None:
            queue = self._queue = deque()
        if len(queue) + 1 > self._max_frames or self._queued_bytes + len(text) > self._max_bytes:
            logger.info("websocket client fell behind; sending resync")
            queue.clear()
            text = json.dumps({"type": RESYNC, "seq": _now_seq()})
            self._queued_bytes = 0
        queue.append(text)
        self._queued_bytes += len(text)
        if self._sender is None and not self._holding:
            self._sender = asyncio.get_running_loop().create_task(self._drain())

    def resync(self) -> None:
        """Tell the client that live frames may have been lost (the channel layer was down):
        it refetches what came after its last `seq` over REST."""
        self.emit({"type": RESYNC, "seq": _now_seq()})

    def send_error(self, exc: BaseException, *, reply_to: int | None = None) -> None:
        frame: dict[str, Any] = {"type": ERROR, "seq": _now_seq(), "error": error_body(exc)}
        if reply_to is not None:
            frame["reply_to"] = reply_to
        self.emit(frame)

    async def _drain(self) -> None:
        """Send what is queued, then end (the next `emit` starts a new sender)."""
        send = self.base_send
        try:
            while (queue := self._queue) and not self._closing:
                text = queue.popleft()
                self._queued_bytes -= len(text)
                # asgiref's TypedDict wants `bytes` too; a server takes either key alone.
                await send({"type": "websocket.send", "text": text})  # type: ignore[arg-type]
        except Exception:  # the client is gone: drop the queue, its disconnect follows
            logger.debug("websocket send failed", exc_info=True)
            self._queue = None
        finally:
            self._sender = None
            if not self._queue or self._closing:
                self._queue = None
                self._queued_bytes = 0

    # --- re-checks -----------------------------------------------------------------------------

    async def recheck(self) -> bool:
        """Re-check authentication and grant now; closes the socket and returns False if lost."""
        if self._closing:
            return False
        (code,) = await ws_recheck.check_sockets([self])
        if code is not None:
            await self.shut(code)
            return False
        return True

    def auth_key(self) -> tuple[int, str | None]:
        """The user and the browser session (None for a ticket) that must still sign in."""
        session = self.scope.get("session")
        session_key = (
            None
            if self.scope.get("auth_method") == "ticket" or session is None
            else session.session_key or ""
        )
        return self.user.pk, session_key

    @property
    def wants_rechecked(self) -> bool:
        return type(self).rechecked is not CortexConsumer.rechecked

    async def run_rechecked(self) -> None:
        """`rechecked()` after a passed periodic re-check; a failure closes with 1011."""
        try:
            await self.rechecked()
        except Exception:
            logger.exception("websocket access re-check failed; closing")
            await self.shut(CLOSE_SERVER_ERROR)


def _now_seq() -> int:
    from time import time_ns

    return time_ns() // 1000
