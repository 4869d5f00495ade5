"""The batched Redis layer: every frame of a batch reaches its group's subscribers, in order."""

from __future__ import annotations

import asyncio

import pytest

from cortex.patches.channels_redis_layer import RedisPubSubChannelLayer


@pytest.mark.asyncio
async def test_group_send_many_delivers_each_frame_in_order(redis_url: str) -> None:
    layer = RedisPubSubChannelLayer(hosts=[redis_url])
    first, second, bystander = [await layer.new_channel() for _ in range(3)]
    await layer.group_add("g.one", first)
    await layer.group_add("g.two", second)
    await layer.group_add("g.two", first)  # in both groups: sees both streams, interleaved
    batch = [
        (group, {"type": "x.frame", "n": n})
        for n in range(200)
        for group in (("g.one",) if n % 2 else ("g.two",))
    ]
    try:
        await layer.group_send_many(batch)
        got_first = [(await layer.receive(first))["n"] for _ in range(200)]
        got_second = [(await layer.receive(second))["n"] for _ in range(100)]
        assert got_first == list(range(200))
        assert got_second == list(range(0, 200, 2))
        with pytest.raises(asyncio.TimeoutError):
            await asyncio.wait_for(layer.receive(bystander), timeout=0.3)
        await layer.group_send_many([])  # nothing to send is not an error
    finally:
        await layer.flush()


@pytest.mark.asyncio
async def test_a_large_batch_reaches_the_subscribed_groups_among_many(redis_url: str) -> None:
    """Past ASK_SUBSCRIBERS_FROM, only groups with subscribers are published to; every frame
    of those still arrives, in order."""
    from cortex.patches.channels_redis_layer import ASK_SUBSCRIBERS_FROM

    layer = RedisPubSubChannelLayer(hosts=[redis_url])
    watcher = await layer.new_channel()
    await layer.group_add("g.watched", watcher)
    batch = [(f"g.idle.{n}", {"type": "x.frame", "n": n}) for n in range(ASK_SUBSCRIBERS_FROM)]
    batch[10:10] = [("g.watched", {"type": "x.frame", "n": -1})]
    batch.append(("g.watched", {"type": "x.frame", "n": -2}))
    try:
        await layer.group_send_many(batch)
        got = [(await layer.receive(watcher))["n"] for _ in range(2)]
        assert got == [-1, -2]
        small = [batch[0], ("g.watched", {"type": "x.frame", "n": -3})]  # sent without asking
        await layer.group_send_many(small)
        assert (await layer.receive(watcher))["n"] == -3
    finally:
        await layer.flush()
