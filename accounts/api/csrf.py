"""CSRF for the password sign-in endpoint.

Login CSRF (a hostile page signing the victim in as the attacker) needs a browser, and browsers
mark such requests: they always send `Origin` on cross-origin POSTs and send the hub's cookies.
So a request that carries an `Origin` header or any cookie must pass Django's full CSRF check
(cookie + X-CSRFToken header from `GET /api/v1/auth/csrf/`, plus the origin check), while a
script with neither (curl, requests without a session) may sign in with just the JSON body.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from rest_framework import exceptions
from rest_framework.authentication import CSRFCheck


def _no_response(request: HttpRequest) -> HttpResponse:  # pragma: no cover - never called
    return HttpResponse()


def enforce_browser_csrf(request: HttpRequest) -> None:
    """Raise a 403 when a browser-shaped request lacks a valid CSRF token or origin."""
    if "HTTP_ORIGIN" not in request.META and not request.COOKIES:
        return
    check = CSRFCheck(_no_response)
    check.process_request(request)
    reason = check.process_view(request, None, (), {})
    if reason:
        raise exceptions.PermissionDenied(f"CSRF Failed: {reason}")
