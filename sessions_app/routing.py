"""WebSocket routes of sessions_app (collected by cortex/routing.py)."""

from __future__ import annotations

from django.urls import path

from sessions_app.consumers import SessionConsumer

websocket_urlpatterns = [
    path("ws/sessions/<int:session_id>/", SessionConsumer.as_asgi()),
]
