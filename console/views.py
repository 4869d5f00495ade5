"""Console pages: templates only; every page loads its data from REST and WebSocket.

The pages carry a strict Content-Security-Policy (scripts and styles only from the hub, no
inline code), so output shown in them can never run as script even if a bug put it in the DOM.
Their scripts, styles and browser libraries are static files (`{% static %}`, served by
cortex.static), like the admin's and the API docs'.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.csrf import ensure_csrf_cookie
from django.views.decorators.http import require_GET

from accounts.selectors import password_login_allowed, user_is_admin, user_signed_in

LOGIN_URL = "/console/login/"
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; media-src 'self' blob:; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'; "
    "form-action 'self'"
)

#: The node page's terminal (xterm.js) adds <style> elements for its glyph and colour rules;
#: scripts stay 'self' only.
NODE_CSP = CSP.replace("style-src 'self'", "style-src 'self' 'unsafe-inline'")


def _page(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Console page: CSRF cookie set for the page's API calls, strict CSP."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        response = view(request, *args, **kwargs)
        response["Content-Security-Policy"] = getattr(response, "csp", CSP)
        response["Cache-Control"] = "no-store"
        return response

    return ensure_csrf_cookie(wrapper)


@_page
@require_GET
def login_page(request: HttpRequest) -> HttpResponse:
    """Password form (posts to the auth API) and the OIDC link when OIDC is configured."""
    target = request.GET.get("next", "/console/")
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        target = "/console/"
    context = {
        "next": target,
        "oidc_enabled": bool(getattr(settings, "OIDC_ENABLED", False)),
        "password_login": password_login_allowed(),
    }
    return render(request, "console/login.html", context)


@_page
@login_required(login_url=LOGIN_URL)
@require_GET
def nodes_page(request: HttpRequest) -> HttpResponse:
    return render(request, "console/nodes.html", {"page": "nodes"})


@_page
@login_required(login_url=LOGIN_URL)
@require_GET
def node_page(request: HttpRequest, node_id: str) -> HttpResponse:
    response = render(request, "console/node.html", {"page": "node", "node_id": node_id})
    response.csp = NODE_CSP  # type: ignore[attr-defined]
    return response


@_page
@login_required(login_url=LOGIN_URL)
@require_GET
def agents_page(request: HttpRequest) -> HttpResponse:
    return render(request, "console/agents.html", {"page": "agents"})


@_page
@login_required(login_url=LOGIN_URL)
@require_GET
def sessions_page(request: HttpRequest) -> HttpResponse:
    return render(request, "console/sessions.html", {"page": "sessions"})


@_page
@login_required(login_url=LOGIN_URL)
@require_GET
def session_page(request: HttpRequest, session_id: int) -> HttpResponse:
    return render(request, "console/session.html", {"page": "session", "session_id": session_id})


# --- settings and admin (issue 18) ------------------------------------------------------------

PROVIDER_FIELDS = ("base_url", "model", "voice", "api_key")
KIND_LABELS = {"llm": "Language model", "tts": "Speech (text to speech)", "stt": "Transcription"}


def _provider_catalogue() -> list[dict[str, Any]]:
    """Per kind: its label and backends, each with the fields this page edits that it takes."""
    from providers.base import KINDS
    from providers.registry import DEFAULT_PROVIDERS, registry

    kinds = []
    for kind in KINDS:
        backends = [
            {
                "id": backend.id,
                "label": backend.label or backend.id,
                "params": " ".join(p for p in backend.parameter_names() if p in PROVIDER_FIELDS),
            }
            for backend in registry.for_kind(kind)
        ]
        kinds.append(
            {
                "kind": kind,
                "label": KIND_LABELS.get(kind, kind),
                "backends": backends,
                "default": DEFAULT_PROVIDERS.get(kind, ""),
            }
        )
    return kinds


@_page
@login_required(login_url=LOGIN_URL)
@require_GET
def settings_page(request: HttpRequest) -> HttpResponse:
    """My providers, default approval policy, API tokens and password."""
    context = {
        "page": "settings",
        "kinds": _provider_catalogue(),
        "fields": PROVIDER_FIELDS,
        "can_change_password": password_login_allowed()
        and user_signed_in(user=request.user).has_usable_password(),
    }
    return render(request, "console/settings.html", context)


@_page
@login_required(login_url=LOGIN_URL)
@require_GET
def admin_page(request: HttpRequest) -> HttpResponse:
    """Nodes, system provider defaults and the audit log, for admins; 404 for anyone else
    (as the admin API answers objects outside a caller's grants)."""
    if not user_is_admin(request.user):
        raise Http404
    context = {"page": "admin", "kinds": _provider_catalogue(), "fields": PROVIDER_FIELDS}
    return render(request, "console/admin.html", context)
