"""Project-level HTTP endpoints: health, readiness, the API's catch-all 404, and Django's error
handlers (which answer the shared error body under /api/)."""

from __future__ import annotations

import asyncio
import logging

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer
from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.db import connection
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET

from cortex import faults
from cortex.api.exceptions import error_body
from cortex.errors import CortexError

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
    except Exception as exc:  # any failure means "not ready"; the log says which
        # An outage is one line; anything unexpected keeps its traceback.
        logger.warning(
            "readiness: database unreachable (%s)",
            type(exc).__name__,
            exc_info=not faults.is_database_outage(exc),
        )
        return False


async def _channel_layer_ok() -> bool:
    layer = get_channel_layer()
    if layer is None:
        return False
    try:
        # Both layers we run (in-memory, Redis) take a prefix; the base class in the stubs does not.
        name = await asyncio.wait_for(layer.new_channel("readyz."), timeout=2)  # type: ignore[call-arg]
        await asyncio.wait_for(layer.send(name, {"type": "readyz.ping"}), timeout=2)
        message = await asyncio.wait_for(layer.receive(name), timeout=2)
        return message.get("type") == "readyz.ping"
    except Exception as exc:  # any failure means "not ready"; the log says which
        logger.warning(
            "readiness: channel layer unreachable (%s)",
            type(exc).__name__,
            exc_info=not (faults.is_channel_layer_outage(exc) or isinstance(exc, OSError)),
        )
        return False


async def readyz(request: HttpRequest) -> JsonResponse:
    """Database and channel layer reachable: 200, else 503 naming what is down.

    Body: `{"status": "ok"|"unavailable", "checks": {"database": bool, "channel_layer": bool},
    "down": [names]}`; a 503 carries Retry-After.
    """
    if request.method != "GET":
        return JsonResponse(error_body("method_not_allowed", "Use GET."), status=405)
    database, channel_layer = await asyncio.gather(
        sync_to_async(_database_ok)(), _channel_layer_ok()
    )
    checks = {"database": database, "channel_layer": channel_layer}
    down = [name for name, ok in checks.items() if not ok]
    response = JsonResponse(
        {"status": "unavailable" if down else "ok", "checks": checks, "down": down},
        status=503 if down else 200,
    )
    if down:
        from cortex.faults import RETRY_AFTER_SECONDS

        response["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


def metrics(request: HttpRequest) -> HttpResponse:
    """Prometheus exposition of this process (`cortex.metrics`); scrapers are checked first.

    Refused: 401 (with a bearer challenge) when a token is configured, else 403; never the
    metrics. Runs in a thread: the database gauges are read at scrape time.
    """
    from cortex import metrics as process_metrics

    if request.method not in ("GET", "HEAD"):
        return JsonResponse(error_body("method_not_allowed", "Use GET."), status=405)
    if not process_metrics.scrape_allowed(
        authorization=request.headers.get("Authorization", ""),
        peer=request.META.get("REMOTE_ADDR"),
    ):
        from django.conf import settings

        if settings.METRICS_TOKEN:
            response = JsonResponse(
                error_body("not_authenticated", "A valid metrics token is required."), status=401
            )
            response["WWW-Authenticate"] = 'Bearer realm="metrics"'
            return response
        return JsonResponse(
            error_body("permission_denied", "This address may not read metrics."), status=403
        )
    body, content_type = process_metrics.render()
    return HttpResponse(body, content_type=content_type)


@csrf_exempt  # changes nothing; an unsafe method gets the JSON 404, not the CSRF HTML page
def api_not_found(request: HttpRequest, path: str = "") -> JsonResponse:
    """Any unknown path under /api/v1/ answers the documented error body."""
    return JsonResponse(error_body("not_found", "No API endpoint at this path."), status=404)


# --- Django's own error paths, for views that are not DRF's -------------------------------------


def _is_api(request: HttpRequest) -> bool:
    return request.path.startswith("/api/")


def api_error_response(exc: BaseException | None, request: HttpRequest) -> JsonResponse:
    """The shared error body for an exception outside DRF (never its text)."""
    from cortex.api.exceptions import BadRequest, django_input_error, outage_error, status_for

    error = django_input_error(exc) if exc is not None else None
    if error is not None:
        return JsonResponse(error_body(error.code, error.message), status=status_for(error))
    outage = outage_error(exc)
    if outage is not None:
        return outage_response(outage)
    if isinstance(exc, Http404):
        return JsonResponse(error_body("not_found", "Not found."), status=404)
    if isinstance(exc, DjangoPermissionDenied):
        return JsonResponse(
            error_body("permission_denied", "You do not have permission to do this."), status=403
        )
    if exc is None:
        bad = BadRequest()
        return JsonResponse(error_body(bad.code, bad.message), status=400)
    logger.error("Unhandled error on %s", request.path, exc_info=exc)
    return JsonResponse(error_body("server_error", "Internal server error."), status=500)


def outage_response(error: CortexError) -> JsonResponse:
    """503 in the shared error body, with Retry-After: a dependency is down, try again."""
    response = JsonResponse(error_body(error.code, error.message), status=503)
    if error.retry_after is not None:
        response["Retry-After"] = str(int(error.retry_after))
    return response


_CODES_BY_STATUS = {
    400: ("bad_request", "The request could not be understood."),
    401: ("not_authenticated", "Authentication credentials were not provided or are invalid."),
    403: ("permission_denied", "You do not have permission to do this."),
    404: ("not_found", "Not found."),
    405: ("method_not_allowed", "Method not allowed."),
    413: ("request_too_large", "The request body is larger than this endpoint accepts."),
    429: ("throttled", "Too many requests."),
}


def api_error_for_status(status: int) -> JsonResponse:
    """The shared error body for an error response that came without one."""
    code, message = _CODES_BY_STATUS.get(
        status, ("server_error", "Internal server error.") if status >= 500 else ("error", "Error.")
    )
    return JsonResponse(error_body(code, message), status=status)


def bad_request(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    """handler400: JSON under /api/ (413 for a body too large), Django's page elsewhere."""
    if _is_api(request):
        return api_error_response(exception, request)
    return defaults.bad_request(request, exception)  # type: ignore[arg-type]


def permission_denied(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if _is_api(request):
        return api_error_response(exception or DjangoPermissionDenied(), request)
    return defaults.permission_denied(request, exception)  # type: ignore[arg-type]


def page_not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    if _is_api(request):
        return api_error_response(Http404(), request)
    return defaults.page_not_found(request, exception)


def server_error(request: HttpRequest) -> HttpResponse:
    if _is_api(request):
        return JsonResponse(error_body("server_error", "Internal server error."), status=500)
    return defaults.server_error(request)
