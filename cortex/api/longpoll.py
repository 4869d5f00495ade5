"""Long polls (`?wait=`) that hold no thread while they wait, capped per user and per process.

A sync DRF view that waits holds its request thread for the whole wait: 1,500 concurrent
`?wait=30` polls from one user held 1,500 threads, slowed everybody else's requests to tens of
seconds and took the process to 890 MB. `long_poll(view, wait=...)` wraps such a view in an
async one. Under the ASGI server it runs the view once in the loop's shared worker pool; the
view, instead of waiting, calls `defer()`, which takes a slot and leaves the wait to the
wrapper. The wrapper waits on the event loop (`wait(key, timeout)`, a coroutine), then runs the
view again, which renders the state it finds (grants re-checked on the way). Without the
server (the sync test client) the view waits inline, in a slot as well (`slot()`).

The caps (`CORTEX_LONGPOLL_PER_USER`, `CORTEX_LONGPOLL_PER_PROCESS`) are applied twice: by
`LongPollAdmission` (ASGI, on the loop) to the poll requests in flight per credential and in
all, so the excess of a burst is refused before Django starts a thread for it; and by the
slots the view takes per user, which hold across a user's credentials. Both count what this
process holds. That is the right unit for both: what a wait costs (a coroutine, a doorbell
subscription, a share of the status checks) is this process's memory and loop. A user's waits
on two hub processes count separately, so with N web processes a user may hold N times the
per-user cap in all. Past either cap the request answers 429 `too_many_waits` with
Retry-After.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import re
import threading
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

from asgiref.sync import AsyncToSync, SyncToAsync, sync_to_async
from django.conf import settings
from django.db import connections
from django.http import HttpRequest, HttpResponse

from cortex import errors

#: Seconds a refused poll is told to wait (Retry-After).
RETRY_AFTER_SECONDS = 2


class TooManyWaits(errors.Throttled):
    code = "too_many_waits"
    default_message = "Too many requests are waiting at once; try again shortly."


class _Slots:
    """Waits held by this process, in all and per user (thread-safe; memory of this process)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._per_user: Counter[Any] = Counter()
        self._total = 0

    def take(self, user_id: Any) -> None:
        with self._lock:
            if self._total >= int(settings.LONGPOLL_PER_PROCESS) or self._per_user[user_id] >= int(
                settings.LONGPOLL_PER_USER
            ):
                raise TooManyWaits(retry_after=RETRY_AFTER_SECONDS)
            self._total += 1
            self._per_user[user_id] += 1

    def give(self, user_id: Any) -> None:
        with self._lock:
            self._total -= 1
            self._per_user[user_id] -= 1
            if self._per_user[user_id] <= 0:
                del self._per_user[user_id]

    def held(self) -> tuple[int, int]:
        """(waits in all, users waiting): for metrics and tests."""
        with self._lock:
            return self._total, len(self._per_user)


slots = _Slots()


@contextlib.contextmanager
def slot(*, user_id: Any) -> Iterator[None]:
    """Hold one wait slot for the block; raises TooManyWaits past a cap."""
    slots.take(user_id)
    try:
        yield
    finally:
        slots.give(user_id)


@dataclass
class _Deferred:
    """Attached to the request by `long_poll`: what the view left it to wait for."""

    user_id: Any = None
    key: Any = None
    timeout: float = 0.0
    taken: bool = False
    waited: bool = False


_ATTRIBUTE = "_cortex_long_poll"


def defer(request: Any, *, user_id: Any, key: Any, timeout: float) -> bool:
    """Called by a view that would wait: True when the `long_poll` wrapper waits instead (a
    slot is taken now, TooManyWaits past a cap) or already has (render what is there now);
    False when there is no wrapper and the view must wait itself, inside `slot()`."""
    http_request = getattr(request, "_request", request)
    deferred: _Deferred | None = getattr(http_request, _ATTRIBUTE, None)
    if deferred is None:
        return False
    if deferred.waited:
        return True
    deferred.user_id = user_id
    slots.take(user_id)
    deferred.key, deferred.timeout, deferred.taken = key, timeout, True
    return True


def _under_server() -> bool:
    """Running under the ASGI server's request context (not below a sync caller such as the
    test client, whose thread must run the view: its database transaction lives there)."""
    if getattr(AsyncToSync.executors, "current", None) is not None:
        return False
    return SyncToAsync.thread_sensitive_context.get(None) is not None


def _release_request_thread() -> None:
    """Let the request's idle sync thread go for the length of the wait.

    Django gives each request a thread of its own for sync work, kept until the request ends.
    It holds no database connection (closed by the pass that deferred); asgiref starts a new
    one if the rest of the request needs it, and ends that one with the request.
    """
    context = SyncToAsync.thread_sensitive_context.get(None)
    executor = SyncToAsync.context_to_thread_executor.pop(context, None) if context else None
    if executor is not None:
        executor.shutdown(wait=False)


def _pass(
    view: Callable[..., HttpResponse], request: HttpRequest, *args: Any, **kwargs: Any
) -> Any:
    """One run of the sync view in the request's thread, rendered; a pass that leaves a wait
    to the wrapper closes the thread's connections, since the thread is let go next."""
    response = view(request, *args, **kwargs)
    render = getattr(response, "render", None)
    if callable(render):
        response = render()
    deferred: _Deferred = getattr(request, _ATTRIBUTE)
    if deferred.taken and not deferred.waited:
        connections.close_all()
    return response


_run_pass = sync_to_async(_pass, thread_sensitive=True)


def long_poll(
    view: Callable[..., HttpResponse], *, wait: Callable[[Any, float], Awaitable[None]]
) -> Callable[..., Awaitable[HttpResponse]]:
    """Wrap a sync view whose handler calls `defer()` into an async view that waits on the
    loop. Attributes of `view` (DRF's `cls`, `actions`, `csrf_exempt`) are kept for routers,
    the schema and the route checks."""

    @functools.wraps(view)
    async def async_view(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not _under_server():
            return await sync_to_async(view)(request, *args, **kwargs)
        deferred = _Deferred()
        setattr(request, _ATTRIBUTE, deferred)
        response = await _run_pass(view, request, *args, **kwargs)
        if not deferred.taken:
            return response
        try:
            _release_request_thread()
            await wait(deferred.key, deferred.timeout)
        finally:
            slots.give(deferred.user_id)
        deferred.waited = True
        return await _run_pass(view, request, *args, **kwargs)

    return async_view


_WAIT_PATH = re.compile(r"^/api/v1/tasks/[0-9a-fA-F-]{32,36}/$")


class LongPollAdmission:
    """ASGI middleware: long-poll requests in flight, per credential and in all, capped before
    Django sees them.

    Django gives every request in flight a thread of its own (its sync middleware starts one
    before the view), so a burst of polls costs a thread each until each one reaches the view
    and `defer()`. Counting them here, on the loop, refuses the excess of a burst (429
    `too_many_waits`) for the price of a header look-up. The key is the credential (bearer
    token or session cookie, fingerprinted), as no user is known yet; the per-user slots in
    the view then hold across a user's credentials. Same caps as the slots, per process.
    """

    def __init__(self, app: Any) -> None:
        self.app = app
        self.in_flight: Counter[bytes] = Counter()
        self.total = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if (
            scope["type"] != "http"
            or b"wait=" not in scope.get("query_string", b"")
            or not _WAIT_PATH.match(scope["path"])
        ):
            await self.app(scope, receive, send)
            return
        key = _credential_key(scope["headers"])
        if self.total >= int(settings.LONGPOLL_PER_PROCESS) or self.in_flight[key] >= int(
            settings.LONGPOLL_PER_USER
        ):
            await _send_refusal(send)
            return
        self.total += 1
        self.in_flight[key] += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.total -= 1
            self.in_flight[key] -= 1
            if self.in_flight[key] <= 0:
                del self.in_flight[key]


def _credential_key(headers: list[tuple[bytes, bytes]]) -> bytes:
    cookie_name = settings.SESSION_COOKIE_NAME.encode() + b"="
    for name, value in headers:
        if name == b"authorization":
            return hashlib.sha256(value).digest()
        if name == b"cookie" and cookie_name in value:
            session = value.split(cookie_name, 1)[1].split(b";", 1)[0]
            return hashlib.sha256(b"session:" + session).digest()
    return b""


async def _send_refusal(send: Any) -> None:
    error = TooManyWaits()
    body = json.dumps({"error": {"code": error.code, "message": error.message}}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 429,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"retry-after", str(RETRY_AFTER_SECONDS).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
