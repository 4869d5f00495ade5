"""Sign-in throttles: per client address and per account (rates in settings)."""

from __future__ import annotations

import hashlib
from typing import Any

from rest_framework.request import Request
from rest_framework.throttling import SimpleRateThrottle


class LoginIpThrottle(SimpleRateThrottle):
    """Attempts per peer address; X-Forwarded-For is ignored because a client can forge it."""

    scope = "login_ip"

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        ident = request.META.get("REMOTE_ADDR") or "unknown"
        return self.cache_format % {"scope": self.scope, "ident": ident}


class LoginAccountThrottle(SimpleRateThrottle):
    """Attempts per target account (the email as sent, lower-cased and hashed for the key)."""

    scope = "login_account"

    def get_cache_key(self, request: Request, view: Any) -> str | None:
        data = request.data
        email = data.get("email") if hasattr(data, "get") else None
        if not isinstance(email, str) or not email.strip():
            return None
        ident = hashlib.sha256(email.strip().lower().encode("utf-8")).hexdigest()
        return self.cache_format % {"scope": self.scope, "ident": ident}
