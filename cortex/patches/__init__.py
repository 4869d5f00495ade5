"""Every place the hub reaches into a library's internals for speed, one module per library.

- `channels_redis_layer` (channels-redis): `RedisPubSubChannelLayer.group_send_many`, publishes
  a batch of group messages through one pipeline per shard, using the pub/sub layer's
  internals.
- `asgiref_loops` (asgiref): `call_in_home_loop` reads `SyncToAsync`'s thread-local to find the
  event loop a sync thread works for, and hands it work instead of blocking on it.
- `channels_dispatch` (channels): `HoplessDispatch.dispatch` re-implements Channels' consumer
  dispatch without a database-thread hop before every message.
- `django_middleware` (Django): `OnLoopHooks` re-implements `MiddlewareMixin.__acall__` so the
  hooks of four stock middleware run on the event loop instead of hopping threads.

Each module names its library (`LIBRARY`), the version it was written against
(`PINNED_VERSION`, also pinned in requirements.txt) and what it relies on (`RELIES_ON`);
cortex/tests/test_patches.py fails loudly when an upgrade changes any of them.
"""
