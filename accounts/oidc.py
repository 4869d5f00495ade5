"""OIDC sign-in on top of mozilla-django-oidc, hardened.

- Endpoints come from the settings or, when OIDC_OP_DISCOVERY_URL is set, from the provider's
  discovery document, fetched lazily once (with OIDC_TIMEOUT), never at import.
- ID tokens must be RS256, signed by a key from the provider's JWKS, with our audience, the
  expected issuer, a current `exp` and the nonce bound to the session; PKCE S256 and state are
  handled by the library's views with our settings.
- Users are matched by `sub` (accounts.services.oidc); every failure is audited and leaves no
  session; after sign-in the browser goes only to a relative path on this hub.
"""

from __future__ import annotations

import logging
import threading
from typing import Any
from urllib.parse import urlsplit

import jwt
import requests
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured, SuspiciousOperation
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseBadRequest
from django.utils.encoding import smart_str
from jwt.types import Options
from mozilla_django_oidc.auth import OIDCAuthenticationBackend
from mozilla_django_oidc.middleware import SessionRefresh
from mozilla_django_oidc.views import (
    OIDCAuthenticationCallbackView,
    OIDCAuthenticationRequestView,
)

from accounts.context import OIDC_CONTEXT, AuditContext
from accounts.errors import OidcUserRefused
from accounts.services.audit import audit_record
from accounts.services.oidc import oidc_user_resolve

logger = logging.getLogger("accounts.oidc")

ALGORITHM = "RS256"
CLOCK_LEEWAY_SECONDS = 30

_discovery_lock = threading.Lock()
_discovery_cache: dict[str, dict[str, Any]] = {}


def _discover(url: str) -> dict[str, Any]:
    with _discovery_lock:
        if url not in _discovery_cache:
            response = requests.get(url, timeout=settings.OIDC_TIMEOUT)
            response.raise_for_status()
            document = response.json()
            if not isinstance(document, dict):
                raise ImproperlyConfigured("OIDC discovery document is not an object.")
            _discovery_cache[url] = document
        return _discovery_cache[url]


def oidc_endpoints() -> dict[str, str]:
    """The provider's endpoints and issuer: explicit settings win over discovery."""
    found = _discover(settings.OIDC_OP_DISCOVERY_URL) if settings.OIDC_OP_DISCOVERY_URL else {}
    endpoints = {
        "authorization": settings.OIDC_OP_AUTHORIZATION_ENDPOINT
        or found.get("authorization_endpoint", ""),
        "token": settings.OIDC_OP_TOKEN_ENDPOINT or found.get("token_endpoint", ""),
        "userinfo": settings.OIDC_OP_USER_ENDPOINT or found.get("userinfo_endpoint", ""),
        "jwks": settings.OIDC_OP_JWKS_ENDPOINT or found.get("jwks_uri", ""),
        "issuer": settings.OIDC_OP_ISSUER or found.get("issuer", ""),
    }
    missing = [k for k in ("authorization", "token", "jwks") if not endpoints[k]]
    if missing:
        raise ImproperlyConfigured(f"OIDC endpoints missing: {', '.join(missing)}")
    return endpoints


def safe_next_path(value: str | None) -> str | None:
    """`value` if it is a relative path on this hub (no scheme, host or `//`), else None."""
    if not value:
        return None
    if not value.startswith("/") or value.startswith(("//", "/\\")) or "\\" in value:
        return None
    if any(ord(c) < 0x20 for c in value):
        return None
    parts = urlsplit(value)
    if parts.scheme or parts.netloc:
        return None
    return value


def _context(request: HttpRequest | None) -> AuditContext:
    """The OIDC flow's audit context, built from the request it runs in."""
    return AuditContext.from_request(request, "oidc") if request is not None else OIDC_CONTEXT


def _audit_failure(request: HttpRequest | None, reason: str, **details: Any) -> None:
    audit_record(
        actor=None,
        action="auth.login.failed",
        target_type="user",
        audit_context=_context(request),
        details={"method": "oidc", "reason": reason, **details},
    )


class OIDCBackend(OIDCAuthenticationBackend):
    """Authorization-code backend: RS256 via JWKS only, users by `sub`, failures audited."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # The parent reads endpoints here; ours are resolved lazily on an OIDC callback only,
        # because Django builds every backend for each password sign-in too.
        from django.contrib.auth import get_user_model

        self.UserModel = get_user_model()
        self.OIDC_RP_SIGN_ALGO = ALGORITHM
        self.OIDC_RP_IDP_SIGN_KEY = None
        self.OIDC_RP_CLIENT_ID = settings.OIDC_RP_CLIENT_ID
        self.OIDC_RP_CLIENT_SECRET = settings.OIDC_RP_CLIENT_SECRET
        self.issuer = ""

    def _load_endpoints(self) -> None:
        endpoints = oidc_endpoints()
        self.OIDC_OP_TOKEN_ENDPOINT = endpoints["token"]
        self.OIDC_OP_USER_ENDPOINT = endpoints["userinfo"]
        self.OIDC_OP_JWKS_ENDPOINT = endpoints["jwks"]
        self.issuer = endpoints["issuer"]

    def authenticate(self, request: HttpRequest | None, **kwargs: Any) -> Any:
        # Only the callback view passes `nonce`; password sign-in never reaches the provider.
        if request is None or "nonce" not in kwargs or not settings.OIDC_ENABLED:
            return None
        try:
            self._load_endpoints()
            user = super().authenticate(request, **kwargs)
        except OidcUserRefused as exc:
            _audit_failure(request, exc.message)
            return None
        except (
            SuspiciousOperation,
            jwt.PyJWTError,
            requests.RequestException,
            ImproperlyConfigured,
            KeyError,
            ValueError,
        ) as exc:
            logger.warning("OIDC sign-in failed: %s", type(exc).__name__)
            _audit_failure(request, _reason_of(exc))
            return None
        if user is None:
            _audit_failure(request, "no_user")
        return user

    def verify_token(self, token: str, **kwargs: Any) -> dict[str, Any]:
        """Check signature (RS256, JWKS), audience, issuer, expiry and nonce of an ID token."""
        if not token:
            raise SuspiciousOperation("missing_id_token")
        header = jwt.get_unverified_header(token)
        if header.get("alg") != ALGORITHM:
            raise SuspiciousOperation("algorithm_not_allowed")
        key = self.retrieve_matching_jwk(token)
        options: Options = {"require": ["exp", "iat", "sub", "aud", "iss"]}
        if not self.issuer:
            options["verify_iss"] = False
        payload = jwt.decode(
            token,
            key,
            algorithms=[ALGORITHM],
            audience=self.OIDC_RP_CLIENT_ID,
            issuer=self.issuer or None,
            leeway=CLOCK_LEEWAY_SECONDS,
            options=options,
        )
        aud = payload.get("aud")
        if isinstance(aud, list) and len(aud) > 1 and payload.get("azp") != self.OIDC_RP_CLIENT_ID:
            raise SuspiciousOperation("azp_mismatch")
        if "nonce" in kwargs and payload.get("nonce") != kwargs["nonce"]:
            raise SuspiciousOperation("nonce_mismatch")
        return payload

    def retrieve_matching_jwk(self, token: str) -> Any:
        """The JWKS key for the token's `kid` that is an RSA signing key."""
        response = requests.get(self.OIDC_OP_JWKS_ENDPOINT, timeout=settings.OIDC_TIMEOUT)
        response.raise_for_status()
        kid = jwt.get_unverified_header(token).get("kid")
        for jwk in response.json().get("keys", []):
            if jwk.get("kty") != "RSA" or jwk.get("use", "sig") != "sig":
                continue
            if jwk.get("alg", ALGORITHM) != ALGORITHM:
                continue
            if kid is not None and smart_str(jwk.get("kid")) != smart_str(kid):
                continue
            return jwt.PyJWK(jwk, algorithm=ALGORITHM)
        raise SuspiciousOperation("no_matching_key")

    def get_token(self, payload: dict[str, Any]) -> dict[str, Any]:
        response = requests.post(
            self.OIDC_OP_TOKEN_ENDPOINT, data=payload, timeout=settings.OIDC_TIMEOUT
        )
        if response.status_code != 200:
            # The body may echo request data; log only the status.
            logger.warning("OIDC token endpoint answered %s", response.status_code)
            raise SuspiciousOperation("token_endpoint_error")
        return response.json()

    def get_userinfo(self, access_token: str, id_token: str, payload: dict[str, Any]) -> Any:
        """ID-token claims, completed by the userinfo endpoint when it has one (same `sub`)."""
        claims = dict(payload)
        if self.OIDC_OP_USER_ENDPOINT and access_token:
            response = requests.get(
                self.OIDC_OP_USER_ENDPOINT,
                headers={"Authorization": f"Bearer {access_token}"},
                timeout=settings.OIDC_TIMEOUT,
            )
            response.raise_for_status()
            info = response.json()
            if str(info.get("sub")) != str(payload.get("sub")):
                raise SuspiciousOperation("userinfo_sub_mismatch")
            claims.update({k: v for k, v in info.items() if k not in ("iss", "aud", "exp")})
        return claims

    def verify_claims(self, claims: dict[str, Any]) -> bool:
        return bool(claims.get("sub"))

    def get_or_create_user(self, access_token: str, id_token: str, payload: dict[str, Any]) -> Any:
        claims = self.get_userinfo(access_token, id_token, payload)
        if not self.verify_claims(claims):
            raise SuspiciousOperation("claims_invalid")
        return oidc_user_resolve(
            claims=claims,
            groups_claim=settings.OIDC_GROUPS_CLAIM,
            audit_context=_context(self.request),
        )

    def get_user(self, user_id: Any) -> Any:
        user = super().get_user(user_id)
        return user if user is not None and user.is_active else None


def _reason_of(exc: Exception) -> str:
    if isinstance(exc, SuspiciousOperation) and str(exc).replace("_", "").isalpha():
        return str(exc)
    if isinstance(exc, jwt.ExpiredSignatureError):
        return "token_expired"
    if isinstance(exc, jwt.InvalidAudienceError):
        return "audience_mismatch"
    if isinstance(exc, jwt.InvalidIssuerError):
        return "issuer_mismatch"
    if isinstance(exc, jwt.InvalidSignatureError):
        return "signature_invalid"
    if isinstance(exc, jwt.PyJWTError):
        return "token_invalid"
    if isinstance(exc, requests.RequestException):
        return "provider_unreachable"
    return "provider_error"


class OIDCAuthenticateView(OIDCAuthenticationRequestView):
    """Starts the flow; refuses a `next` that is not a relative path on this hub."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super(OIDCAuthenticationRequestView, self).__init__(*args, **kwargs)
        self.OIDC_RP_CLIENT_ID = settings.OIDC_RP_CLIENT_ID
        self.OIDC_OP_AUTH_ENDPOINT = ""

    def get(self, request: HttpRequest) -> HttpResponse:
        if not settings.OIDC_ENABLED:
            raise Http404("OIDC sign-in is not configured.")
        raw_next = request.GET.get("next")
        next_path = safe_next_path(raw_next)
        if raw_next and next_path is None:
            _audit_failure(request, "unsafe_redirect")
            return HttpResponseBadRequest("The next parameter must be a path on this hub.")
        try:
            self.OIDC_OP_AUTH_ENDPOINT = oidc_endpoints()["authorization"]
        except (requests.RequestException, ImproperlyConfigured, ValueError):
            logger.warning("OIDC discovery failed", exc_info=True)
            _audit_failure(request, "provider_unreachable")
            return HttpResponse("The sign-in provider is unreachable.", status=503)
        response = super().get(request)
        request.session["oidc_login_next"] = next_path
        return response


class OIDCCallbackView(OIDCAuthenticationCallbackView):
    """Finishes the flow; state problems and provider errors are audited, never a session."""

    @property
    def success_url(self) -> str:
        return (
            safe_next_path(self.request.session.get("oidc_login_next"))
            or settings.LOGIN_REDIRECT_URL
        )

    def get(self, request: HttpRequest) -> HttpResponse:
        if not settings.OIDC_ENABLED:
            raise Http404("OIDC sign-in is not configured.")
        state = request.GET.get("state")
        known = request.session.get("oidc_states") or {}
        if request.GET.get("error"):
            _audit_failure(request, "provider_error", error=str(request.GET["error"])[:64])
        elif "code" in request.GET and state not in known:
            # The library would raise (a 400 and an error log); refuse quietly and record it.
            _audit_failure(request, "state_mismatch")
            return self.login_failure()
        return super().get(request)

    def login_success(self) -> HttpResponse:
        response = super().login_success()
        audit_record(
            actor=self.user,
            action="auth.login.succeeded",
            target_type="user",
            target_id=self.user.pk,
            audit_context=_context(self.request),
            details={"method": "oidc"},
        )
        return response


class OIDCSessionRefresh(SessionRefresh):
    """Re-checks OIDC sessions with the provider (prompt=none) once the renewal window ends."""

    def __init__(self, get_response: Any) -> None:
        super(SessionRefresh, self).__init__(get_response)
        self.OIDC_EXEMPT_URLS = getattr(settings, "OIDC_EXEMPT_URLS", [])
        self.OIDC_RP_CLIENT_ID = settings.OIDC_RP_CLIENT_ID
        self.OIDC_STATE_SIZE = 32
        self.OIDC_AUTHENTICATION_CALLBACK_URL = "oidc_authentication_callback"
        self.OIDC_RP_SCOPES = settings.OIDC_RP_SCOPES
        self.OIDC_USE_NONCE = True
        self.OIDC_NONCE_SIZE = 32
        self.OIDC_OP_AUTHORIZATION_ENDPOINT = ""

    def process_request(self, request: HttpRequest) -> HttpResponse | None:
        if not settings.OIDC_ENABLED or not self.is_refreshable_url(request):
            return None
        self.OIDC_OP_AUTHORIZATION_ENDPOINT = oidc_endpoints()["authorization"]
        return super().process_request(request)
