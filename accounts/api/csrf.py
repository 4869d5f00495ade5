"""CSRF for the password sign-in endpoint.

Login CSRF (a hostile page signing the victim in as the attacker) needs a browser. Every
browser-shaped sign-in must pass Django's full CSRF check (the cookie and `X-CSRFToken` from
`GET /api/v1/auth/csrf/`, plus the origin check). Only a request that positively looks like a
script skips it: a JSON body (a cross-site page cannot send one without a CORS preflight, which
the hub never grants) and none of the headers or cookies a browser adds (`Origin`, `Referer`,
`Sec-Fetch-*`, any cookie). A form-encoded, multipart or text body always needs the token, and
so does anything this function does not recognise.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from rest_framework import exceptions
from rest_framework.authentication import CSRFCheck

_BROWSER_HEADERS = (
    "HTTP_ORIGIN",
    "HTTP_REFERER",
    "HTTP_SEC_FETCH_SITE",
    "HTTP_SEC_FETCH_MODE",
    "HTTP_SEC_FETCH_DEST",
)


def _no_response(request: HttpRequest) -> HttpResponse:  # pragma: no cover - never called
    return HttpResponse()


def is_script_request(request: HttpRequest) -> bool:
    """A JSON request with nothing a browser would add: the one shape that skips CSRF."""
    content_type = request.META.get("CONTENT_TYPE", "").split(";", 1)[0].strip().lower()
    if content_type != "application/json":
        return False
    if request.COOKIES or request.META.get("HTTP_COOKIE", "").strip():
        return False
    return not any(h in request.META for h in _BROWSER_HEADERS)


def enforce_browser_csrf(request: HttpRequest) -> None:
    """Raise a 403 when a browser-shaped request lacks a valid CSRF token or origin."""
    if is_script_request(request):
        return
    check = CSRFCheck(_no_response)
    check.process_request(request)
    reason = check.process_view(request, _no_response, (), {})  # a view that is not exempt
    if reason:
        raise exceptions.PermissionDenied(f"CSRF Failed: {reason}")
