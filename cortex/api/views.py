"""Project-level HTTP endpoints: health, readiness, and the API's catch-all 404."""

from __future__ import annotations

import asyncio
import logging

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.db import connection
from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET

from cortex.api.exceptions import error_body

logger = logging.getLogger("cortex.health")


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """The process is alive; nothing else is checked."""
    return JsonResponse({"status": "ok"})


def _database_ok() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            return cursor.fetchone() == (1,)
    except Exception:  # any failure means "not ready"; the log says which
        logger.warning("readiness: database unreachable", exc_info=True)
        return False


async def _channel_layer_ok() -> bool:
    layer = get_channel_layer()
    if layer is None:
        return False
    try:
        name = await asyncio.wait_for(layer.new_channel("readyz."), timeout=2)
        await asyncio.wait_for(layer.send(name, {"type": "readyz.ping"}), timeout=2)
        message = await asyncio.wait_for(layer.receive(name), timeout=2)
        return message.get("type") == "readyz.ping"
    except Exception:  # any failure means "not ready"; the log says which
        logger.warning("readiness: channel layer unreachable", exc_info=True)
        return False


async def readyz(request: HttpRequest) -> JsonResponse:
    """Database and channel layer reachable: 200, else 503 with what failed."""
    if request.method != "GET":
        return JsonResponse(error_body("method_not_allowed", "Use GET."), status=405)
    checks = {
        "database": await sync_to_async(_database_ok)(),
        "channel_layer": await _channel_layer_ok(),
    }
    ready = all(checks.values())
    return JsonResponse(
        {"status": "ok" if ready else "unavailable", "checks": checks}, status=200 if ready else 503
    )


@csrf_exempt  # changes nothing; an unsafe method gets the JSON 404, not the CSRF HTML page
def api_not_found(request: HttpRequest, path: str = "") -> JsonResponse:
    """Any unknown path under /api/v1/ answers the documented error body."""
    return JsonResponse(error_body("not_found", "No API endpoint at this path."), status=404)
