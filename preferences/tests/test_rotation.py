"""rotate_field_keys: add a new first key, rotate, drop the old key; refuse if a key is missing."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from django.core.management import CommandError, call_command
from django.test import override_settings

from preferences import crypto
from preferences.models import PreferenceLayer, Scope
from preferences.selectors import effective_config

pytestmark = pytest.mark.django_db

KEY_A = Fernet.generate_key().decode()
KEY_B = Fernet.generate_key().decode()
KEY_C = Fernet.generate_key().decode()
SECRET = "sk-rotation-dddddddddd4444"


def test_rotation_keeps_every_secret_readable(user, group_eng, set_layer, capsys):
    with override_settings(FIELD_KEYS=[KEY_A]):
        set_layer(Scope.SYSTEM, "llm", {"provider": "gemini", "api_key": SECRET})
        set_layer(Scope.GROUP, "tts", {"provider": "gemini", "api_key": SECRET}, group=group_eng)
        set_layer(Scope.USER, "stt", {"provider": "gemini", "api_key": SECRET}, user=user)
        before = {layer.pk: layer.secrets["api_key"] for layer in PreferenceLayer.objects.all()}
    with override_settings(FIELD_KEYS=[KEY_B, KEY_A]):
        call_command("rotate_field_keys")
        assert capsys.readouterr().out.strip() == "Re-encrypted 3 secret(s) with the first key."
    with override_settings(FIELD_KEYS=[KEY_B]):
        for layer in PreferenceLayer.objects.all():
            assert layer.secrets["api_key"] != before[layer.pk]
            assert crypto.decrypt(layer.secrets["api_key"]) == SECRET
        for kind in ("llm", "tts", "stt"):
            assert effective_config(user=user, kind=kind).values["api_key"] == SECRET


def test_rotation_refuses_when_a_key_in_use_was_dropped(user, set_layer):
    with override_settings(FIELD_KEYS=[KEY_A]):
        set_layer(Scope.USER, "llm", {"provider": "gemini", "api_key": SECRET}, user=user)
        stored = PreferenceLayer.objects.get().secrets["api_key"]
    with override_settings(FIELD_KEYS=[KEY_C]), pytest.raises(CommandError) as caught:
        call_command("rotate_field_keys")
    assert "cannot be decrypted" in str(caught.value)
    assert SECRET not in str(caught.value)
    assert PreferenceLayer.objects.get().secrets["api_key"] == stored
    with override_settings(FIELD_KEYS=[KEY_A]):
        assert crypto.decrypt(stored) == SECRET


def test_field_keys_rotate_counts_secrets_and_refuses_without_writing(user, set_layer):
    from preferences.services import field_keys_rotate
    from preferences.services.keys import UndecryptableSecrets

    with override_settings(FIELD_KEYS=[KEY_A]):
        set_layer(Scope.USER, "llm", {"provider": "gemini", "api_key": SECRET}, user=user)
        set_layer(Scope.USER, "tts", {"provider": "espeak"}, user=user)  # no secret
        stored = PreferenceLayer.objects.get(kind="llm").secrets["api_key"]
    with override_settings(FIELD_KEYS=[KEY_C]), pytest.raises(UndecryptableSecrets) as refused:
        field_keys_rotate()
    assert refused.value.code == "secret_unavailable"
    assert "field api_key" in str(refused.value.message) and SECRET not in refused.value.message
    assert PreferenceLayer.objects.get(kind="llm").secrets["api_key"] == stored
    with override_settings(FIELD_KEYS=[KEY_B, KEY_A]):
        assert field_keys_rotate() == 1
        rotated = PreferenceLayer.objects.get(kind="llm").secrets["api_key"]
    assert rotated != stored
    with override_settings(FIELD_KEYS=[KEY_B]):
        assert crypto.decrypt(rotated) == SECRET
        assert field_keys_rotate() == 1  # idempotent: already under the first key
