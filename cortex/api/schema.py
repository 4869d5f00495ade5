"""OpenAPI generation: request/response serializers from CortexViewSet, and error bodies.

Every operation documents the error body shape for the status codes it can answer with, so
generated clients and fuzzers know them.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.authentication import SessionScheme
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.utils import OpenApiResponse

from cortex.error_codes import openapi_extension

_ERROR_REF = {"$ref": "#/components/schemas/ErrorBody"}
ERROR_CODES_NOTE = (
    'Errors answer `{"error": {"code", "message", "fields"?}}`. Every stable `code`, its '
    "HTTP status and meaning are listed in this schema's `x-error-codes` and in docs/errors.md."
)


def error_response(description: str) -> OpenApiResponse:
    """An error response documented with the shared error body, for `extend_schema`."""
    return OpenApiResponse(response=_ERROR_REF, description=description)


_ERROR_DESCRIPTIONS = {
    "400": "Invalid input.",
    "401": "Not authenticated.",
    "403": "Forbidden.",
    "404": "Not found, or outside your grants.",
    "405": "Method not allowed.",
    "406": "Not acceptable.",
    "409": "Conflict with the current state.",
    "415": "Unsupported media type.",
    "429": "Too many requests.",
}


class CortexAutoSchema(AutoSchema):
    """Reads CortexViewSet's `input_serializers` / `output_serializer(s)` for the schema."""

    def get_request_serializer(self) -> Any:
        getter = getattr(self.view, "input_serializer_class", None)
        if getter is not None and self.method not in ("GET", "HEAD", "OPTIONS", "DELETE"):
            return getter()
        return super().get_request_serializer()

    def get_response_serializers(self) -> Any:
        getter = getattr(self.view, "output_serializer_class", None)
        if getter is not None and getter() is not None:
            return getter()
        return super().get_response_serializers()

    def _is_create_operation(self) -> bool:
        created = getattr(self.view, "created_actions", None)
        if created is not None and self.method == "POST":
            return getattr(self.view, "action", None) in created
        return super()._is_create_operation()


def add_error_responses(
    result: dict[str, Any], generator: Any, request: Any, public: bool
) -> dict[str, Any]:
    """Postprocessing hook: document the error body on every operation, and every error code.

    The catalogue (`cortex.error_codes`) goes in as the root extension `x-error-codes`, and the
    description points to `docs/errors.md`, the same table for people.
    """
    result["x-error-codes"] = openapi_extension()
    info = result.setdefault("info", {})
    info["description"] = (
        f"{info.get('description', '')}\n\n{ERROR_CODES_NOTE}".strip()
        if ERROR_CODES_NOTE not in info.get("description", "")
        else info["description"]
    )
    for methods in result.get("paths", {}).values():
        for method, operation in methods.items():
            if not isinstance(operation, dict) or "responses" not in operation:
                continue
            # Public operations too: login answers 401 (wrong password) and 403 (disabled).
            codes = ["400", "401", "403", "404", "405", "406", "415", "429"]
            if method in ("post", "put", "patch", "delete"):
                codes.append("409")
            for code in codes:
                response = operation["responses"].setdefault(
                    code, {"description": _ERROR_DESCRIPTIONS[code], "content": {}}
                )
                # An operation that documents its own body for an error status (an install
                # script's 404) may still answer the shared error body there.
                response.setdefault("content", {}).setdefault(
                    "application/json", {"schema": _ERROR_REF}
                )
    return result


class CsrfSessionScheme(SessionScheme):
    """Documents the session cookie authentication in the OpenAPI schema."""

    target_class = "cortex.api.authentication.CsrfSessionAuthentication"
