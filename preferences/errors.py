"""Domain errors of the preferences app; codes are API."""

from __future__ import annotations

from cortex import errors


class SecretUnavailable(errors.Unavailable):
    code = "secret_unavailable"
    default_message = (
        "A stored secret cannot be decrypted with the configured field keys; set it again."
    )


class ProviderNotConfigured(errors.ValidationFailed):
    code = "provider_not_configured"
    default_message = "No provider is configured for this kind; ask an admin or set your own."


class FieldLocked(errors.ValidationFailed):
    code = "field_locked"
    default_message = "A field is locked by a higher layer."


class ProviderNotAllowed(errors.ValidationFailed):
    code = "provider_not_allowed"
    default_message = "This provider is not allowed for your groups."


class ModelNotAllowed(errors.ValidationFailed):
    code = "model_not_allowed"
    default_message = "This model is not allowed for your groups."


class MissingParameter(errors.ValidationFailed):
    code = "missing_parameter"
    default_message = "A required provider parameter is not set."
