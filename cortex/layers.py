"""The production channel layer: channels_redis pub/sub plus a batched `group_send_many`.

Upstream publishes each group message on its own round trip, one at a time behind a per-shard
lock. A heartbeat flush or an output batch has hundreds of frames for different groups, so
`group_send_many` publishes them through one pipeline per shard: one round trip, same order.
This reaches into `channels_redis.pubsub` internals (`_shards`, `_lock`, `_redis`), which is
why `channels-redis` is pinned in requirements.txt and a test covers delivery and order.
"""

from __future__ import annotations

from typing import Any

from channels_redis.pubsub import RedisPubSubChannelLayer as _UpstreamLayer
from channels_redis.utils import _consistent_hash


class RedisPubSubChannelLayer(_UpstreamLayer):
    async def group_send_many(self, messages: list[tuple[str, dict[str, Any]]]) -> None:
        """Send each (group, message) as `group_send` would, pipelined per Redis shard."""
        if not messages:
            return
        loop_layer = self._get_layer()
        by_shard: dict[int, list[tuple[str, bytes]]] = {}
        for group, message in messages:
            channel = loop_layer._get_group_channel_name(group)
            shard = _consistent_hash(channel, len(loop_layer._shards))
            by_shard.setdefault(shard, []).append((channel, self.serialize(message)))
        for index, published in by_shard.items():
            shard = loop_layer._shards[index]
            async with shard._lock:
                shard._ensure_redis()
                pipe = shard._redis.pipeline(transaction=False)
                for channel, payload in published:
                    pipe.publish(channel, payload)
                await pipe.execute()
