"""ASGI entry point: HTTP to Django, WebSocket behind the origin check and auth middleware.

Static files are answered before Django by `cortex.static.with_static_files`.

Each app contributes `websocket_urlpatterns` from its `routing.py`.
"""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cortex.settings")
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402  # needs Django set up
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from cortex.loops import AdoptLoop  # noqa: E402
from cortex.routing import websocket_urlpatterns  # noqa: E402
from cortex.static import with_static_files  # noqa: E402
from cortex.ws_auth import WebSocketAuthMiddleware  # noqa: E402

router = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AllowedHostsOriginValidator(
            WebSocketAuthMiddleware(URLRouter(websocket_urlpatterns))
        ),
    }
)
application = AdoptLoop(with_static_files(router))
