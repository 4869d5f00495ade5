"""`Authorization: Bearer <personal API token>` for the REST API."""

from __future__ import annotations

from typing import Any

from rest_framework import exceptions
from rest_framework.authentication import BaseAuthentication, get_authorization_header
from rest_framework.request import Request

from accounts.services.tokens import token_authenticate


class BearerTokenAuthentication(BaseAuthentication):
    """Personal API tokens; first in DEFAULT_AUTHENTICATION_CLASSES so anonymous calls get 401.

    A request without a Bearer header falls through to the session; a bad, expired, revoked
    token or an inactive owner is a 401 (never a silent fall-back to the session).
    """

    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[Any, None] | None:
        header = get_authorization_header(request).split()
        if not header or header[0].lower() != self.keyword.lower().encode():
            return None
        if len(header) != 2:
            raise exceptions.AuthenticationFailed("Invalid bearer header.")
        try:
            token = header[1].decode("ascii")
        except UnicodeDecodeError as exc:
            raise exceptions.AuthenticationFailed("Invalid bearer token.") from exc
        user = token_authenticate(token=token)
        if user is None:
            raise exceptions.AuthenticationFailed("Invalid, expired or revoked token.")
        return user, None

    def authenticate_header(self, request: Request) -> str:
        return self.keyword
