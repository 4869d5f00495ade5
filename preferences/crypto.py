"""Field encryption for stored secrets: MultiFernet over settings.FIELD_KEYS.

The first key encrypts, every key decrypts. Keys are read from settings on every call so a
rotation (or a test's override_settings) takes effect at once; they are never derived from
SECRET_KEY.
"""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from preferences.errors import SecretUnavailable


def _multi_fernet() -> MultiFernet:
    keys = [k for k in getattr(settings, "FIELD_KEYS", []) if k]
    if not keys:
        raise ImproperlyConfigured("CORTEX_FIELD_KEYS holds no key.")
    try:
        return MultiFernet([Fernet(k) for k in keys])
    except ValueError as exc:
        # The key text itself must never reach a message or log line.
        raise ImproperlyConfigured("CORTEX_FIELD_KEYS holds a malformed Fernet key.") from exc


def encrypt(plaintext: str) -> str:
    """Encrypt with the first (current) key."""
    return _multi_fernet().encrypt(plaintext.encode()).decode()


def decrypt(token: str) -> str:
    """Decrypt with any configured key; raises SecretUnavailable when none fits."""
    try:
        return _multi_fernet().decrypt(token.encode()).decode()
    except (InvalidToken, ValueError, TypeError, AttributeError):
        raise SecretUnavailable() from None


def can_decrypt(token: str) -> bool:
    """Whether some configured key decrypts the token."""
    try:
        decrypt(token)
    except SecretUnavailable:
        return False
    return True


def reencrypt(token: str) -> str:
    """Re-encrypt under the first key; raises SecretUnavailable when no key decrypts it."""
    try:
        return _multi_fernet().rotate(token.encode()).decode()
    except (InvalidToken, ValueError, TypeError, AttributeError):
        raise SecretUnavailable() from None


def mask(plaintext: str) -> dict[str, object]:
    """The only shape in which a secret leaves the server."""
    return {"configured": True, "last4": plaintext[-4:] if len(plaintext) >= 8 else ""}
