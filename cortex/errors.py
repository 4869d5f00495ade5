"""One error vocabulary for every transport.

Domain code raises these; the HTTP exception handler, the gRPC status table and the WebSocket
consumer base each translate them in exactly one place. Codes are API: add, never rename.
"""

from __future__ import annotations

from typing import ClassVar


class CortexError(Exception):
    """Base of every domain error; `code` is a stable snake_case identifier."""

    code: ClassVar[str] = "error"
    default_message: ClassVar[str] = "The request could not be completed."
    #: A more precise HTTP status than the category's (413, 415, 502, 504, ...); None: the
    #: category decides. Read only by the HTTP exception handler.
    http_status: ClassVar[int | None] = None
    #: Seconds the caller should wait before trying again (sent as Retry-After), if known.
    retry_after: float | None = None

    def __init__(
        self,
        message: str | None = None,
        *,
        fields: dict[str, list[str]] | None = None,
        code: str | None = None,
    ) -> None:
        self.message = message or self.default_message
        self.fields = fields
        if code:
            self.code = code  # type: ignore[misc]  # per-instance code for one-off errors
        super().__init__(self.message)


class ValidationFailed(CortexError):
    code = "invalid_input"
    default_message = "Some fields are invalid."


class NotAuthenticated(CortexError):
    code = "not_authenticated"
    default_message = "Authentication credentials were not provided or are invalid."


class NotFound(CortexError):
    code = "not_found"
    default_message = "Not found."


class PermissionDenied(CortexError):
    code = "permission_denied"
    default_message = "You do not have permission to perform this action."


class Conflict(CortexError):
    code = "conflict"
    default_message = "The request conflicts with the current state."


class Throttled(CortexError):
    code = "throttled"
    default_message = "Too many requests."

    def __init__(self, message: str | None = None, *, retry_after: float | None = None) -> None:
        self.retry_after = retry_after
        super().__init__(message)


class Unavailable(CortexError):
    code = "unavailable"
    default_message = "A service the request depends on is unavailable."
