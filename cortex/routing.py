"""WebSocket routes gathered from every app that has consumers."""

from __future__ import annotations

from importlib import import_module

from channels.generic.websocket import AsyncWebsocketConsumer
from django.apps import apps
from django.urls import URLPattern, URLResolver, re_path


def _collect() -> list[URLPattern | URLResolver]:
    patterns: list[URLPattern | URLResolver] = []
    for config in apps.get_app_configs():
        try:
            module = import_module(f"{config.name}.routing")
        except ModuleNotFoundError as exc:
            if exc.name != f"{config.name}.routing":
                raise
            continue
        patterns.extend(getattr(module, "websocket_urlpatterns", []))
    return patterns


websocket_urlpatterns = _collect()


class UnknownPathConsumer(AsyncWebsocketConsumer):
    """A WebSocket to a path no consumer serves: accepted, then closed with 4404.

    Channels' router would raise instead, which the server answers with an HTTP 500. Closing
    after accept matches how every other refusal is told (4401, 4403): a close code.
    """

    async def connect(self) -> None:
        await self.accept()
        await self.close(code=CLOSE_NOT_FOUND)


CLOSE_NOT_FOUND = 4404

#: Kept apart from `websocket_urlpatterns` (the routes that exist) and routed after them.
unknown_path_patterns: list[URLPattern | URLResolver] = [
    re_path(r"", UnknownPathConsumer.as_asgi()),
]
