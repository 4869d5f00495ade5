"""Channels' consumer dispatch without its `aclose_old_connections()` before every message.

The patch: `HoplessDispatch.dispatch` re-implements `channels.consumer.AsyncConsumer.dispatch`
minus that call. It is a hop to the database thread for every frame and every group message,
per socket: 100 hops for one output line to 100 watchers. Every database call of our consumers
goes through `database_sync_to_async`, which closes stale connections itself before and after,
so the hop buys nothing. cortex/tests/test_patches.py holds Channels' version and the source of
the method re-implemented to what this was written against.
"""

from __future__ import annotations

from typing import Any

from channels.consumer import get_handler_name

LIBRARY = "channels"
PINNED_VERSION = "4.3.2"
RELIES_ON = (
    "channels.consumer.AsyncConsumer.dispatch",
    "channels.consumer.get_handler_name",
)
#: sha256 of the source of `AsyncConsumer.dispatch` in the pinned Channels.
DISPATCH_SHA256 = "39f34e7d4fb0f6552de4ade665b943fe78137379702af6b58c79a14c49a75520"


class HoplessDispatch:
    """Mixin for an `AsyncConsumer`: dispatch as Channels does, without the connection hop."""

    async def dispatch(self, message: dict[str, Any]) -> None:
        handler = getattr(self, get_handler_name(message), None)
        if handler is None:
            raise ValueError(f"No handler for message type {message['type']}")
        await handler(message)
