"""Every route refuses an anonymous caller, except the documented public ones.

The test walks the whole URL configuration, so a route added later by any app is checked too:
a route that cannot be exercised (no sample path resolves to it) fails the test as well.
"""

from __future__ import annotations

import re
import uuid

import pytest
from django.conf import settings
from django.urls import URLPattern, URLResolver, get_resolver, resolve
from django.urls.exceptions import Resolver404
from django.urls.resolvers import LocalePrefixPattern, RegexPattern, RoutePattern
from rest_framework.test import APIClient

# Anonymous callers may use these (prefix match on the sample path).
PUBLIC_EXACT = {
    "/healthz",
    "/readyz",
    "/metrics",  # its own guard: token or CIDR allow-list, else loopback (test_metrics.py)
    "/api/v1/auth/login/",
    "/api/v1/auth/csrf/",
    "/api/v1/schema/",
    "/api/v1/docs/",
    "/console/login/",  # the sign-in page
}
# One-line install links, whose single-use token in
# the path is the credential (an unknown token answers 404: mesh/tests/test_install_link_api.py).
PUBLIC_PREFIXES = ("/oidc/", "/api/v1/install/")
# Answer 404/405 for anything: they serve no data.
CATCH_ALL_NAMES = {"api-not-found"}
METHODS = ("get", "post", "put", "patch", "delete")

_CANDIDATES = ["1", str(uuid.UUID(int=1)), uuid.UUID(int=1).hex, "x1", "json", "llm"]


def _value_for(regex: str) -> str:
    """A value the group's (or converter's) regex accepts fully."""
    options = list(_CANDIDATES)
    if re.fullmatch(r"[\w|-]+", regex):
        options = regex.split("|") + options  # a plain alternation such as llm|tts|stt
    for candidate in options:
        if re.fullmatch(regex, candidate):
            return candidate
    raise AssertionError(f"no sample value for {regex!r}")


def _sample_regex(regex: str) -> str:
    """A concrete string matching a simple URL regex (as Django and DRF routers write them)."""
    text = regex.lstrip("^").rstrip("$").rstrip("\\Z")
    out, i = [], 0
    while i < len(text):
        if text.startswith("(?P<", i):
            depth, j = 0, i
            while j < len(text):
                if text[j] == "\\":
                    j += 2
                    continue
                depth += text[j] == "("
                depth -= text[j] == ")"
                j += 1
                if depth == 0:
                    break
            body = text[text.index(">", i) + 1 : j - 1]
            out.append(_value_for(body))
            i = j
        elif text[i] == "\\":
            out.append(text[i + 1])
            i += 2
        elif text[i] in "?*+" or text.startswith("(?:", i):
            # Optional pieces (`/?`) are taken once; non-capturing groups are kept literally.
            i += 3 if text.startswith("(?:", i) else 1
        elif text[i] in "()":
            i += 1
        else:
            out.append(text[i])
            i += 1
    return "".join(out)


def _sample(pattern: RoutePattern | RegexPattern | LocalePrefixPattern) -> str:
    if isinstance(pattern, RoutePattern):
        return re.sub(
            r"<(?:\w+:)?(\w+)>",
            lambda m: _value_for(pattern.converters[m.group(1)].regex),
            str(pattern),
        )
    return _sample_regex(pattern.regex.pattern)


def _walk(resolver: URLResolver, prefix: str = "/") -> list[tuple[str, URLPattern]]:
    found: list[tuple[str, URLPattern]] = []
    for entry in resolver.url_patterns:
        path = prefix + _sample(entry.pattern)
        if isinstance(entry, URLResolver):
            found.extend(_walk(entry, path))
        else:
            found.append((path, entry))
    return found


def _is_public(path: str) -> bool:
    return path in PUBLIC_EXACT or path.startswith(PUBLIC_PREFIXES)


def _is_login_redirect(response) -> bool:  # type: ignore[no-untyped-def]
    location = response.get("Location", "")
    return response.status_code in (301, 302) and location.startswith(
        (settings.LOGIN_URL, "/admin/login/", "/oidc/authenticate/")
    )


def test_walker_samples_resolve_to_their_patterns():
    unresolvable = []
    for path, pattern in _walk(get_resolver()):
        try:
            match = resolve(path)
        except Resolver404:
            unresolvable.append(path)
            continue
        if match.func is not pattern.callback and pattern.name not in CATCH_ALL_NAMES:
            unresolvable.append(f"{path} -> {match.url_name} (wanted {pattern.name})")
    assert not unresolvable


@pytest.mark.django_db
def test_every_route_refuses_anonymous_callers():
    client = APIClient()
    offenders = []
    checked = 0
    for path, pattern in _walk(get_resolver()):
        if _is_public(path):
            continue
        for method in METHODS:
            response = getattr(client, method)(path)
            checked += 1
            status = response.status_code
            if path.startswith("/admin/"):
                # The admin answers anonymous callers with its sign-in page (or a 404/405).
                redirect = response.get("Location", "")
                ok = (
                    (status in (301, 302) and redirect.startswith("/admin/"))
                    or status in (404, 405)
                    or (path == "/admin/login/" and status == 200)
                )
            elif pattern.name in CATCH_ALL_NAMES:
                ok = status in (404, 405)
            else:
                ok = status == 401 or _is_login_redirect(response)
            if not ok:
                offenders.append(f"{method.upper()} {path} -> {status}")
    assert checked > 50
    assert not offenders, "anonymous access allowed:\n" + "\n".join(offenders)


@pytest.mark.django_db
def test_public_routes_exist_and_answer():
    client = APIClient()
    assert client.get("/healthz").status_code == 200
    assert client.get("/api/v1/auth/csrf/").status_code == 200
    assert client.get("/api/v1/schema/").status_code == 200
    assert client.post("/api/v1/auth/login/", {}, format="json").status_code == 400
