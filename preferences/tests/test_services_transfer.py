"""preferences_export / preferences_import called directly: secrets stay out, imports are atomic."""

from __future__ import annotations

import pytest
import yaml

from accounts.models import AuditEvent
from cortex.errors import ValidationFailed
from preferences.models import PreferenceLayer, Scope
from preferences.services import preferences_export, preferences_import
from preferences.services.transfer import MAX_IMPORT_BYTES, MAX_IMPORT_DEPTH

pytestmark = pytest.mark.django_db

SECRET = "sk-transfer-secret-55556666"


def test_export_holds_only_the_users_own_layers_and_masks_secrets(user, make_user, set_layer):
    bob = make_user("bob@example.com")
    set_layer(Scope.SYSTEM, "tts", {"provider": "espeak", "voice": "en-gb"})
    set_layer(Scope.USER, "llm", {"provider": "gemini", "model": "g", "api_key": SECRET}, user=user)
    set_layer(Scope.USER, "stt", {"provider": "pocketsphinx"}, user=bob)
    text = preferences_export(user=user)
    assert SECRET not in text
    assert yaml.safe_load(text) == {
        "version": 1,
        "preferences": {
            "llm": {"provider": "gemini", "model": "g", "api_key": {"configured": True}}
        },
    }
    assert yaml.safe_load(preferences_export(user=make_user())) == {
        "version": 1,
        "preferences": {},
    }


def test_import_round_trips_an_export_and_keeps_the_stored_secret(user, set_layer):
    set_layer(Scope.USER, "llm", {"provider": "gemini", "model": "g", "api_key": SECRET}, user=user)
    token = PreferenceLayer.objects.get(kind="llm").secrets["api_key"]
    document = yaml.safe_load(preferences_export(user=user))
    document["preferences"]["llm"]["model"] = "h"
    document["preferences"]["tts"] = {"provider": "espeak", "voice": "de"}
    assert preferences_import(actor=user, text=yaml.safe_dump(document)) == ["llm", "tts"]
    llm = PreferenceLayer.objects.get(user=user, kind="llm")
    assert (llm.values["model"], llm.secrets["api_key"]) == ("h", token)
    event = AuditEvent.objects.get(action="preferences.import")
    assert SECRET not in str(event.details)
    sources = set(
        AuditEvent.objects.filter(action="preferences.layer_update").values_list(
            "source", flat=True
        )
    )
    assert "import" in sources


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ("a: [", "file"),
        ("[1, 2]", "preferences"),
        ("version: 2\npreferences: {}", "version"),
        ("preferences: {video: {}}", "preferences.video"),
        ("preferences: {llm: [1]}", "preferences.llm"),
        (
            "preferences:\n  llm: " + "[" * (MAX_IMPORT_DEPTH + 5) + "]" * (MAX_IMPORT_DEPTH + 5),
            "file",
        ),
        ("preferences: {}\n#" + "x" * MAX_IMPORT_BYTES, "file"),
        (
            "preferences: {tts: {provider: espeak}, llm: {provider: gemini, temperature: hot}}",
            "preferences.llm.temperature",
        ),
    ],
)
def test_import_refuses_bad_files_with_field_errors_and_writes_nothing(user, text, field):
    with pytest.raises(ValidationFailed) as exc:
        preferences_import(actor=user, text=text)
    assert field in exc.value.fields
    assert not PreferenceLayer.objects.exists()
    assert not AuditEvent.objects.filter(action__startswith="preferences.").exists()
