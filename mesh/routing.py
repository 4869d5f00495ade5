"""WebSocket routes of the mesh app (collected by cortex/routing.py)."""

from __future__ import annotations

from django.urls import path

from mesh.consumers import MeConsumer, NodeConsumer
from mesh.terminal_consumer import TerminalConsumer

websocket_urlpatterns = [
    path("ws/nodes/<slug:node_id>/", NodeConsumer.as_asgi()),
    path("ws/nodes/<slug:node_id>/terminal/", TerminalConsumer.as_asgi()),
    path("ws/me/", MeConsumer.as_asgi()),
]
