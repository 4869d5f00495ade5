"""mesh.services.secret_mask: which secrets it masks, and that a changed key is masked at once."""

from __future__ import annotations

import pytest

from mesh.services.secret_mask import MASK, mask_secrets, mask_value
from preferences.services import layer_update

pytestmark = pytest.mark.django_db

OLD = "sk-mask-old-7c1e9a3b5d2f4086"
NEW = "sk-mask-new-3f8b2d6a9c1e5074"


def test_a_rotated_key_is_masked_at_once_and_the_old_one_no_longer(staff_user, settings):
    settings.OIDC_RP_CLIENT_SECRET = "oidc-secret-for-masking-42"
    layer_update(actor=staff_user, scope="system", kind="llm", data={"api_key": OLD})
    line = f"key={OLD} oidc=oidc-secret-for-masking-42 short=abc".encode()
    assert mask_secrets(line) == b"key=" + MASK + b" oidc=" + MASK + b" short=abc"
    layer_update(actor=staff_user, scope="system", kind="llm", data={"api_key": NEW})
    assert mask_secrets(f"{OLD} {NEW}".encode()) == OLD.encode() + b" " + MASK


def test_results_are_masked_deeply_and_short_or_hashed_values_are_left(staff_user, settings):
    settings.OIDC_RP_CLIENT_SECRET = "short"  # below MIN_SECRET_LENGTH: would mangle text
    settings.PREFERENCES_ENV_DEFAULTS = {
        "llm": {"api_key": "sk-env-default-5a9d2c7e1b3f", "model": "m"}
    }
    result = {"text": "a sk-env-default-5a9d2c7e1b3f b", "lines": ["short", 3, None]}
    assert mask_value(result) == {"text": "a [masked] b", "lines": ["short", 3, None]}
    assert mask_value("no secrets here") == "no secrets here"
