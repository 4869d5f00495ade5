"""The batched Redis layer: every frame of a batch reaches its group's subscribers, in order."""

from __future__ import annotations

import asyncio

import pytest

from cortex.layers import RedisPubSubChannelLayer


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
