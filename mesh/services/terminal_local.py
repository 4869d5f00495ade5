"""Process-local shortcuts for terminals: a keystroke and its echo skip the channel layer when
the browser's socket and the node's stream live in the same process (`manage.py serve`).

Why: a channel-layer hop is a task wake-up (with Redis, a round trip) per keystroke and per
output chunk, the largest share of the hub's part of an echo. The layer stays the path between
processes: what is delivered here is also sent to the group, marked with this process's token
(`via`), and the receivers in this process drop marked messages, which they had directly. On
the in-memory layer no other process can listen, so nothing is sent to it.

Registrations are plain callables: the node's stream (gRPC side) registers one that queues a
keystroke or a resize on its outbox; a socket registers one that emits an output frame. Both
are synchronous and never wait, so a delivery costs no task switch.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

from channels.layers import InMemoryChannelLayer, get_channel_layer

#: Marks layer messages whose receivers in this process were served directly.
PROCESS_TOKEN = uuid.uuid4().hex

#: A node's stream: takes a live doorbell (input, resize); False if it cannot (closing).
InputSink = Callable[[dict[str, Any]], bool]
#: A watching socket: takes a `terminal.output` frame.
OutputSink = Callable[[dict[str, Any]], None]

_streams: dict[str, list[InputSink]] = {}
_watchers: dict[str, list[OutputSink]] = {}


def _add(registry: dict[str, list[Any]], key: str, sink: Any) -> None:
    registry.setdefault(key, []).append(sink)


def _remove(registry: dict[str, list[Any]], key: str, sink: Any) -> None:
    sinks = registry.get(key)
    if sinks is None:
        return
    if sink in sinks:
        sinks.remove(sink)
    if not sinks:
        del registry[key]


def stream_attach(node_id: str, sink: InputSink) -> None:
    _add(_streams, node_id, sink)


def stream_detach(node_id: str, sink: InputSink) -> None:
    _remove(_streams, node_id, sink)


def watcher_attach(session_id: str, sink: OutputSink) -> None:
    _add(_watchers, session_id, sink)


def watcher_detach(session_id: str, sink: OutputSink) -> None:
    _remove(_watchers, session_id, sink)


def layer_is_local() -> bool:
    """Whether the channel layer reaches this process only (then direct delivery is all)."""
    return isinstance(get_channel_layer(), InMemoryChannelLayer)


def deliver_input(node_id: str, message: dict[str, Any]) -> bool:
    """Hand a live doorbell to the node's streams in this process; True if one took it."""
    taken = False
    for sink in tuple(_streams.get(node_id, ())):
        taken = sink(message) or taken
    return taken


def deliver_output(session_id: str, frame: dict[str, Any]) -> bool:
    """Hand an output frame to the session's sockets in this process; True if there are any."""
    sinks = _watchers.get(session_id)
    if not sinks:
        return False
    for sink in tuple(sinks):
        sink(frame)
    return True


def from_here(message: dict[str, Any]) -> bool:
    """A layer message this process delivered directly already."""
    return message.get("via") == PROCESS_TOKEN


def counts() -> dict[str, int]:
    """Registrations, for tests (a closed socket or stream must leave nothing behind)."""
    return {
        "streams": sum(len(s) for s in _streams.values()),
        "watchers": sum(len(s) for s in _watchers.values()),
    }
