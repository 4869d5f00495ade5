"""ASGI entry point: HTTP to Django, WebSocket behind the origin check and auth middleware.

Each app contributes `websocket_urlpatterns` from its `routing.py`.
"""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cortex.settings")
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402  # needs Django set up

from cortex.loops import AdoptLoop  # noqa: E402
from cortex.proxies import TrustedProxyMiddleware  # noqa: E402
from cortex.routing import websocket_urlpatterns  # noqa: E402
from cortex.ws_auth import WebSocketAuthMiddleware  # noqa: E402
from cortex.ws_refusal import AllowedHostsRefusingOriginValidator  # noqa: E402

router = ProtocolTypeRouter(
    {
        "http": django_asgi_app,
        "websocket": AllowedHostsRefusingOriginValidator(
            WebSocketAuthMiddleware(URLRouter(websocket_urlpatterns))
        ),
    }
)
# Forwarded headers count only from CORTEX_TRUSTED_PROXIES, for HTTP and WebSocket alike.
application = AdoptLoop(TrustedProxyMiddleware(router))
