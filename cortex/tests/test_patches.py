"""Tripwires for `cortex.patches`: each patch was written against one version of its library and
relies on private names; an upgrade that changes either fails here, loudly, before it can fail
quietly in production (lost frames, a blocked loop, a middleware hook skipped)."""

from __future__ import annotations

import asyncio
import hashlib
import importlib
import importlib.metadata
import inspect
import re
from pathlib import Path
from types import ModuleType

import pytest
from asgiref.sync import SyncToAsync, sync_to_async

from cortex.patches import (
    asgiref_loops,
    channels_dispatch,
    channels_redis_layer,
    django_middleware,
    postgresql,
)

PATCHES = [channels_redis_layer, asgiref_loops, django_middleware, channels_dispatch, postgresql]
ROOT = Path(__file__).resolve().parents[2]


def _pins() -> dict[str, str]:
    pins: dict[str, str] = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        found = re.match(r"^([A-Za-z0-9_.-]+)(?:\[[^\]]*\])?==([^\s;#]+)", line)
        if found:
            pins[found.group(1).lower()] = found.group(2)
    return pins


def _resolve(dotted: str) -> object:
    """The object a dotted path names: the longest importable module, then attributes."""
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            target: object = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for name in parts[cut:]:
            target = getattr(target, name)
        return target
    raise ModuleNotFoundError(dotted)


@pytest.mark.parametrize("patch", PATCHES, ids=lambda module: module.__name__)
def test_the_patched_library_is_the_pinned_version(patch: ModuleType) -> None:
    installed = importlib.metadata.version(patch.LIBRARY)
    assert installed == patch.PINNED_VERSION, (
        f"{patch.__name__} patches {patch.LIBRARY} {patch.PINNED_VERSION}, but {installed} is "
        "installed: re-read the library's source against RELIES_ON before changing the pin"
    )
    assert _pins()[patch.LIBRARY.lower()] == patch.PINNED_VERSION, "requirements.txt differs"


def test_channels_redis_internals_exist() -> None:
    from channels_redis import pubsub

    for dotted in channels_redis_layer.RELIES_ON:
        owner, _, name = dotted.rpartition(".")
        if owner.endswith(("RedisPubSubLoopLayer", "RedisSingleShardConnection")) and name in (
            "_shards",
            "_lock",
            "_redis",
        ):
            continue  # instance attributes: checked on a real instance below
        assert callable(_resolve(dotted)), dotted

    async def build() -> None:
        layer = pubsub.RedisPubSubChannelLayer(hosts=["redis://127.0.0.1:9"])  # never dialled
        loop_layer = layer._get_layer()
        assert isinstance(loop_layer, pubsub.RedisPubSubLoopLayer)
        shard = loop_layer._shards[0]
        assert isinstance(shard, pubsub.RedisSingleShardConnection)
        assert isinstance(shard._lock, asyncio.Lock)
        assert shard._redis is None  # lazy until `_ensure_redis`
        assert inspect.signature(shard._ensure_redis).parameters == {}
        channel = loop_layer._get_group_channel_name("g.one")
        assert isinstance(channel, str) and "g.one" in channel

    asyncio.run(build())
    # The upstream send the batch form stands in for publishes on the same group channel.
    source = inspect.getsource(pubsub.RedisPubSubLoopLayer.group_send)
    assert "_get_group_channel_name(group)" in source
    assert "publish(" in source


def test_asgiref_records_the_loop_where_call_in_home_loop_reads_it() -> None:
    assert isinstance(SyncToAsync.threadlocal, type(SyncToAsync.threadlocal))

    seen: dict[str, object] = {}

    def in_thread() -> None:
        local = SyncToAsync.threadlocal
        seen["loop"] = getattr(local, "main_event_loop", None)
        seen["pid"] = getattr(local, "main_event_loop_pid", None)

    async def main() -> None:
        seen["running"] = asyncio.get_running_loop()
        await sync_to_async(in_thread)()

    asyncio.run(main())
    assert seen["loop"] is seen["running"], "SyncToAsync no longer records the thread's loop"
    import os

    assert seen["pid"] == os.getpid()


def test_call_in_home_loop_hands_work_to_an_adopted_loop() -> None:
    calls: list[str] = []

    async def main() -> bool:
        asgiref_loops.adopt_running_loop()
        handed = await sync_to_async(asgiref_loops.call_in_home_loop)(calls.append, "rang")
        await asyncio.sleep(0)
        return handed

    assert asyncio.run(main()) is True
    assert calls == ["rang"]


def test_django_middleware_chain_is_the_one_reimplemented() -> None:
    from django.utils.deprecation import MiddlewareMixin

    for dotted in django_middleware.RELIES_ON:
        assert _resolve(dotted) is not None, dotted
    source = inspect.getsource(MiddlewareMixin.__acall__)
    digest = hashlib.sha256(source.encode()).hexdigest()
    assert digest == django_middleware.MIXIN_ACALL_SHA256, (
        "Django's MiddlewareMixin.__acall__ changed: OnLoopHooks.__acall__ re-implements it; "
        "bring it in line, then record the new digest"
    )
    from django.contrib.messages.storage.base import BaseStorage
    from django.http import HttpRequest

    storage = BaseStorage(HttpRequest())
    assert (storage.used, storage.added_new) == (False, False)  # MessageMiddleware.hook_blocks
    for name in ("SessionMiddleware", "CommonMiddleware", "AuthenticationMiddleware"):
        ours = getattr(django_middleware, name)
        assert issubclass(ours, MiddlewareMixin)
        assert ours.__acall__ is django_middleware.OnLoopHooks.__acall__


def test_channels_dispatch_is_the_one_reimplemented() -> None:
    from channels.consumer import AsyncConsumer

    from cortex.consumers import CortexConsumer

    for dotted in channels_dispatch.RELIES_ON:
        assert callable(_resolve(dotted)), dotted
    source = inspect.getsource(AsyncConsumer.dispatch)
    assert hashlib.sha256(source.encode()).hexdigest() == channels_dispatch.DISPATCH_SHA256, (
        "Channels' AsyncConsumer.dispatch changed: HoplessDispatch.dispatch re-implements it; "
        "bring it in line, then record the new digest"
    )
    assert CortexConsumer.dispatch is channels_dispatch.HoplessDispatch.dispatch


def test_postgresql_pool_internals_exist_and_django_builds_its_pool_as_rebuilt() -> None:
    from django.db.backends.postgresql.base import DatabaseWrapper

    for dotted in postgresql.RELIES_ON:
        assert _resolve(dotted) is not None, dotted
    source = inspect.getsource(DatabaseWrapper.pool.fget)  # type: ignore[attr-defined]
    digest = hashlib.sha256(source.encode()).hexdigest()
    assert digest == postgresql.DJANGO_POOL_SHA256, (
        "Django's DatabaseWrapper.pool changed: cortex/patches/postgresql/base.py rebuilds it; "
        "bring it in line, then record the new digest"
    )
    assert list(
        inspect.signature(
            importlib.import_module("psycopg_pool").ConnectionPool._add_connection
        ).parameters
    ) == ["self", "attempt", "growing"]
