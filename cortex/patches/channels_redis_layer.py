"""The production channel layer: channels_redis pub/sub plus a batched `group_send_many`.

Upstream publishes each group message on its own round trip, one at a time behind a per-shard
lock. A heartbeat flush or an output batch has hundreds of frames for different groups, so
`group_send_many` publishes them through one pipeline per shard: one round trip, same order.
This reaches into `channels_redis.pubsub` internals (`RELIES_ON`), which is why `channels-redis`
is pinned in requirements.txt; cortex/tests/test_patches.py checks the pin and the internals,
and cortex/tests/test_layers.py delivery and order on a real Redis.
"""

from __future__ import annotations

from typing import Any

from channels_redis.pubsub import RedisPubSubChannelLayer as _UpstreamLayer
from channels_redis.utils import _consistent_hash

LIBRARY = "channels-redis"
PINNED_VERSION = "4.3.0"
#: The internals used: the per-loop layer and its group channel names, the shard hash, and each
#: shard connection's lock, lazy client and client.
RELIES_ON = (
    "channels_redis.pubsub.RedisPubSubChannelLayer._get_layer",
    "channels_redis.pubsub.RedisPubSubLoopLayer._get_group_channel_name",
    "channels_redis.pubsub.RedisPubSubLoopLayer._shards",
    "channels_redis.pubsub.RedisSingleShardConnection._lock",
    "channels_redis.pubsub.RedisSingleShardConnection._ensure_redis",
    "channels_redis.pubsub.RedisSingleShardConnection._redis",
    "channels_redis.utils._consistent_hash",
)

#: A batch this large first asks Redis which of its groups have subscribers (one round trip)
#: and serialises only their messages: a heartbeat flush has a frame for every node's console,
#: and few of them are open. Smaller batches (a task's output) are sent without asking.
ASK_SUBSCRIBERS_FROM = 64


class RedisPubSubChannelLayer(_UpstreamLayer):
    async def group_send_many(self, messages: list[tuple[str, dict[str, Any]]]) -> None:
        """Send each (group, message) as `group_send` would, pipelined per Redis shard.

        A message to a group nobody subscribes to is dropped by Redis anyway; for a large
        batch it is not serialised (a subscriber joining meanwhile misses it, as it would have
        a moment earlier: frames are a doorbell, watchers catch up over REST).
        """
        if not messages:
            return
        loop_layer = self._get_layer()
        by_shard: dict[int, list[tuple[str, dict[str, Any]]]] = {}
        for group, message in messages:
            channel = loop_layer._get_group_channel_name(group)
            shard = _consistent_hash(channel, len(loop_layer._shards))
            by_shard.setdefault(shard, []).append((channel, message))
        for index, batch in by_shard.items():
            shard = loop_layer._shards[index]
            async with shard._lock:
                shard._ensure_redis()
                if len(batch) >= ASK_SUBSCRIBERS_FROM:
                    channels = list(dict.fromkeys(channel for channel, _ in batch))
                    counts = await shard._redis.pubsub_numsub(*channels)
                    heard = {_text(channel) for channel, count in counts if count}
                    batch = [(channel, message) for channel, message in batch if channel in heard]
                    if not batch:
                        continue
                pipe = shard._redis.pipeline(transaction=False)
                for channel, message in batch:
                    pipe.publish(channel, self.serialize(message))
                await pipe.execute()


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value
