"""mesh/services/secret_mask.py: `known_secrets` lists the hub's own secrets, longest first, and
sees a changed one at once."""

from __future__ import annotations

import pytest

from mesh.services.secret_mask import MIN_SECRET_LENGTH, known_secrets
from preferences.services import layer_update

pytestmark = pytest.mark.django_db

KEY = "sk-known-secret-1a2b3c4d5e6f7081"


def test_known_secrets_follow_stored_and_configured_secrets(staff_user, settings) -> None:  # type: ignore[no-untyped-def]
    settings.OIDC_RP_CLIENT_SECRET = "oidc-client-secret-99"
    settings.PREFERENCES_ENV_DEFAULTS = {"llm": {"api_key": "short", "model": "a-long-model-name"}}
    before = known_secrets()
    assert b"oidc-client-secret-99" in before
    assert b"short" not in before  # below MIN_SECRET_LENGTH
    assert b"a-long-model-name" not in before  # not a secret-named key
    assert KEY.encode() not in before

    layer_update(actor=staff_user, scope="system", kind="llm", data={"api_key": KEY})
    after = known_secrets()
    assert KEY.encode() in after
    assert all(len(s) >= MIN_SECRET_LENGTH for s in after)
    assert list(after) == sorted(after, key=len, reverse=True)

    settings.OIDC_RP_CLIENT_SECRET = ""
    assert b"oidc-client-secret-99" not in known_secrets()
