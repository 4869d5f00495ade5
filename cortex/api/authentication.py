"""Session authentication for the REST API (CSRF enforced for unsafe methods)."""

from __future__ import annotations

from rest_framework.authentication import SessionAuthentication
from rest_framework.request import Request


class CsrfSessionAuthentication(SessionAuthentication):
    """DRF's session authentication, named so that settings say what it does.

    A browser session authenticates only when the user is still active; CSRF is enforced by the
    parent class on unsafe methods.
    """

    def authenticate_header(self, request: Request) -> str:
        # A challenge makes an anonymous call a 401 rather than a 403, as clients expect.
        return 'Session realm="cortex"'
