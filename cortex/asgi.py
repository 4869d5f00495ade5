"""ASGI entry point: HTTP to Django, WebSocket behind the origin check and auth middleware.

Each app contributes `websocket_urlpatterns` from its `routing.py`. HTTP passes the body limits
(`cortex.body_limits`) before Django reads a byte, and long polls their admission
(`cortex.api.longpoll`); a WebSocket to a path no consumer serves is
accepted and closed with 4404 (`cortex.routing.UnknownPathConsumer`). Both `daphne
cortex.asgi:application` and `manage.py serve` run this same `application`. Static files are
answered before Django by `cortex.static.with_static_files`.
"""

from __future__ import annotations

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "cortex.settings")
django_asgi_app = get_asgi_application()

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402  # needs Django set up

from cortex.api.longpoll import LongPollAdmission  # noqa: E402
from cortex.body_limits import BodyLimitMiddleware  # noqa: E402
from cortex.patches.asgiref_loops import AdoptLoop  # noqa: E402
from cortex.proxies import TrustedProxyMiddleware  # noqa: E402
from cortex.routing import unknown_path_patterns, websocket_urlpatterns  # noqa: E402
from cortex.static import with_static_files  # noqa: E402
from cortex.ws_auth import WebSocketAuthMiddleware  # noqa: E402
from cortex.ws_refusal import AllowedHostsRefusingOriginValidator  # noqa: E402

router = ProtocolTypeRouter(
    {
        "http": BodyLimitMiddleware(LongPollAdmission(django_asgi_app)),
        "websocket": AllowedHostsRefusingOriginValidator(
            WebSocketAuthMiddleware(URLRouter([*websocket_urlpatterns, *unknown_path_patterns]))
        ),
    }
)
# Forwarded headers count only from CORTEX_TRUSTED_PROXIES, for HTTP and WebSocket alike.
application = AdoptLoop(TrustedProxyMiddleware(with_static_files(router)))
