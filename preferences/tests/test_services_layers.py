"""layer_check: the admin dry run answers exactly as layer_update would, and writes nothing."""

from __future__ import annotations

import pytest

from accounts.models import AuditEvent
from cortex.errors import NotFound, ValidationFailed
from preferences.errors import FieldLocked
from preferences.models import PreferenceLayer, Scope
from preferences.services import layer_check, layer_update
from providers.errors import UnknownProvider

pytestmark = pytest.mark.django_db


def _snapshot() -> list[tuple]:
    return list(PreferenceLayer.objects.order_by("pk").values_list("pk", "provider", "values"))


def test_layer_check_accepts_valid_changes_without_writing(user, set_layer):
    set_layer(Scope.SYSTEM, "llm", {"provider": "gemini", "model": "g"})
    before, audits = _snapshot(), AuditEvent.objects.count()
    layer_check(scope=Scope.SYSTEM, kind="llm", data={"model": "h", "temperature": 0.5})
    layer_check(scope=Scope.USER, kind="tts", data={"provider": "espeak"}, user=user)
    assert _snapshot() == before and AuditEvent.objects.count() == audits


@pytest.mark.parametrize(
    ("data", "error", "code"),
    [
        ({"provider": "nope"}, UnknownProvider, "unknown_provider"),
        ({"provider": "gemini", "temperature": "hot"}, ValidationFailed, "invalid_input"),
        ({"model": "mine"}, FieldLocked, "field_locked"),
    ],
)
def test_layer_check_refuses_what_layer_update_refuses(
    user, staff_user, set_layer, data, error, code
):
    set_layer(Scope.SYSTEM, "llm", {"provider": "gemini", "model": "g", "locked": ["model"]})
    before = _snapshot()
    with pytest.raises(error) as checked:
        layer_check(scope=Scope.USER, kind="llm", data=data, user=user)
    with pytest.raises(error) as updated:
        layer_update(actor=user, scope=Scope.USER, kind="llm", data=data, user=user)
    assert checked.value.code == updated.value.code == code
    assert checked.value.fields == updated.value.fields
    assert _snapshot() == before


def test_layer_check_refuses_an_unknown_kind():
    with pytest.raises(NotFound) as exc:
        layer_check(scope=Scope.SYSTEM, kind="video", data={})
    assert exc.value.code == "not_found"
