"""effective_config: layers, sources, locks, limits, defaults and secrets."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group
from django.test import override_settings

from accounts.models import AuditEvent
from cortex import errors
from preferences import crypto
from preferences.errors import (
    FieldLocked,
    ModelNotAllowed,
    ProviderNotAllowed,
    ProviderNotConfigured,
    SecretUnavailable,
)
from preferences.models import PreferenceLayer, Scope
from preferences.selectors import effective_config, effective_config_public
from providers.errors import UnknownProvider

pytestmark = pytest.mark.django_db

SYS_KEY = "sk-system-aaaaaaaaaaaa1111"
USER_KEY = "sk-user-bbbbbbbbbbbbbb2222"


def test_nothing_configured_gives_local_defaults_and_no_llm(user):
    llm = effective_config(user=user, kind="llm")
    assert (llm.provider, llm.values, llm.sources) == ("", {}, {})
    with pytest.raises(ProviderNotConfigured) as caught:
        llm.backend()
    assert caught.value.code == "provider_not_configured"
    tts = effective_config(user=user, kind="tts")
    assert tts.provider == "espeak"
    assert tts.values == {"voice": "en-us", "speed": 175}
    assert tts.sources == {"provider": "default", "voice": "default", "speed": "default"}
    stt = effective_config(user=user, kind="stt")
    assert (stt.provider, stt.values) == ("pocketsphinx", {"language": "en-us"})


def test_layers_stack_with_sources_field_by_field(user, group_eng, set_layer):
    set_layer(
        Scope.SYSTEM,
        "llm",
        {"provider": "openai_compatible", "model": "gpt-4o", "api_key": SYS_KEY},
    )
    set_layer(Scope.GROUP, "llm", {"temperature": 0.2}, group=group_eng)
    set_layer(Scope.USER, "llm", {"model": "gpt-4o-mini"}, user=user)
    config = effective_config(user=user, kind="llm", session_override={"temperature": 0.9})
    assert config.provider == "openai_compatible"
    assert config.values == {
        "model": "gpt-4o-mini",
        "api_key": SYS_KEY,
        "temperature": 0.9,
        "base_url": "https://api.openai.com/v1",
    }
    assert config.sources == {
        "provider": "system",
        "model": "user",
        "api_key": "system",
        "temperature": "session",
        "base_url": "default",
    }
    assert SYS_KEY not in repr(config)
    assert config.masked_values()["api_key"] == {"configured": True, "last4": "1111"}


def test_user_provider_switch_does_not_inherit_other_providers_key(user, set_layer):
    set_layer(Scope.SYSTEM, "llm", {"provider": "openai_compatible", "api_key": SYS_KEY})
    set_layer(Scope.USER, "llm", {"provider": "anthropic", "model": "claude-x"}, user=user)
    config = effective_config(user=user, kind="llm")
    assert config.provider == "anthropic"
    assert "api_key" not in config.values
    assert config.sources["provider"] == "user"


def test_system_lock_blocks_group_and_user_and_says_who(user, group_eng, set_layer):
    set_layer(
        Scope.SYSTEM,
        "llm",
        {"provider": "openai_compatible", "model": "gpt-4o", "locked": ["provider", "model"]},
    )
    with pytest.raises(FieldLocked) as caught:
        set_layer(Scope.USER, "llm", {"model": "other"}, user=user)
    assert caught.value.fields == {"model": ["Locked by system."]}
    with pytest.raises(FieldLocked):
        set_layer(Scope.GROUP, "llm", {"provider": "anthropic"}, group=group_eng)
    with pytest.raises(FieldLocked) as caught:
        effective_config(user=user, kind="llm", session_override={"model": "x"})
    assert "locked by the system layer" in caught.value.message
    assert not PreferenceLayer.objects.filter(scope__in=[Scope.USER, Scope.GROUP]).exists()


def test_group_lock_binds_user_but_a_later_system_lock_wins_for_display(user, group_eng, set_layer):
    set_layer(Scope.GROUP, "tts", {"voice": "en-gb", "locked": ["voice"]}, group=group_eng)
    with pytest.raises(FieldLocked) as caught:
        set_layer(Scope.USER, "tts", {"voice": "de"}, user=user)
    assert caught.value.fields == {"voice": ["Locked by group:eng."]}
    public = effective_config_public(user=user, kind="tts")
    assert public["locked"] == {"voice": "group:eng"}
    assert public["sources"]["voice"] == "group:eng"


def test_lock_added_later_ignores_existing_lower_values(user, set_layer):
    set_layer(Scope.USER, "tts", {"voice": "de"}, user=user)
    set_layer(Scope.SYSTEM, "tts", {"voice": "en-us", "locked": ["voice"]})
    config = effective_config(user=user, kind="tts")
    assert (config.values["voice"], config.sources["voice"]) == ("en-us", "system")


def test_group_limits_reject_disallowed_provider_and_model(user, group_eng, set_layer):
    set_layer(
        Scope.GROUP,
        "llm",
        {"allowed_providers": ["openai_compatible"], "allowed_models": ["gpt-4o-mini"]},
        group=group_eng,
    )
    audits = AuditEvent.objects.count()
    with pytest.raises(ProviderNotAllowed) as caught:
        set_layer(Scope.USER, "llm", {"provider": "anthropic"}, user=user)
    assert caught.value.code == "provider_not_allowed"
    assert "openai_compatible" in caught.value.message
    with pytest.raises(ModelNotAllowed):
        set_layer(Scope.USER, "llm", {"provider": "openai_compatible", "model": "gpt-5"}, user=user)
    assert not PreferenceLayer.objects.filter(scope=Scope.USER).exists()
    assert AuditEvent.objects.count() == audits
    set_layer(
        Scope.USER, "llm", {"provider": "openai_compatible", "model": "gpt-4o-mini"}, user=user
    )
    assert effective_config(user=user, kind="llm").values["model"] == "gpt-4o-mini"
    with pytest.raises(ModelNotAllowed):
        effective_config(user=user, kind="llm", session_override={"model": "gpt-5"})


def test_limits_union_over_groups(user, group_eng, set_layer):
    other = Group.objects.create(name="research")
    user.groups.add(other)
    set_layer(Scope.GROUP, "llm", {"allowed_providers": ["gemini"]}, group=group_eng)
    set_layer(Scope.GROUP, "llm", {"allowed_providers": ["anthropic"]}, group=other)
    set_layer(Scope.USER, "llm", {"provider": "anthropic"}, user=user)
    assert effective_config(user=user, kind="llm").provider == "anthropic"


def test_other_users_and_groups_do_not_leak(user, make_user, set_layer):
    stranger = make_user("bob@example.com")
    group = Group.objects.create(name="ops")
    stranger.groups.add(group)
    set_layer(Scope.USER, "llm", {"provider": "gemini", "api_key": USER_KEY}, user=stranger)
    set_layer(Scope.GROUP, "tts", {"provider": "gemini"}, group=group)
    assert effective_config(user=user, kind="llm").provider == ""
    assert effective_config(user=user, kind="tts").provider == "espeak"


def test_session_override_is_validated(user):
    with pytest.raises(UnknownProvider):
        effective_config(user=user, kind="llm", session_override={"provider": "nope"})
    with pytest.raises(errors.ValidationFailed) as caught:
        effective_config(
            user=user, kind="llm", session_override={"provider": "gemini", "colour": "red"}
        )
    assert caught.value.fields == {"colour": ["Unknown field."]}
    config = effective_config(
        user=user, kind="llm", session_override={"provider": "gemini", "model": "g"}
    )
    assert (config.provider, config.sources["provider"], config.sources["model"]) == (
        "gemini",
        "session",
        "session",
    )


def test_unknown_kind_is_not_found(user):
    with pytest.raises(errors.NotFound):
        effective_config(user=user, kind="video")


def test_wrong_key_gives_secret_unavailable_never_plaintext(user, set_layer):
    set_layer(Scope.USER, "llm", {"provider": "gemini", "api_key": USER_KEY}, user=user)
    with override_settings(FIELD_KEYS=[crypto_new_key()]):
        with pytest.raises(SecretUnavailable) as caught:
            effective_config(user=user, kind="llm")
        assert caught.value.code == "secret_unavailable"
        assert "user layer" in caught.value.message
        public = effective_config_public(user=user, kind="llm")
        assert public["values"]["api_key"] == {
            "configured": True,
            "last4": "",
            "error": "secret_unavailable",
        }


def test_secrets_are_stored_encrypted(user, set_layer):
    layer = set_layer(Scope.USER, "llm", {"provider": "gemini", "api_key": USER_KEY}, user=user)
    stored = PreferenceLayer.objects.get(pk=layer.pk)
    assert USER_KEY not in str(stored.secrets) and USER_KEY not in str(stored.values)
    assert crypto.decrypt(stored.secrets["api_key"]) == USER_KEY


def crypto_new_key() -> str:
    from cryptography.fernet import Fernet

    return Fernet.generate_key().decode()


def test_effective_config_is_one_query(user, group_eng, set_layer, django_assert_num_queries):
    set_layer(Scope.SYSTEM, "llm", {"provider": "gemini", "api_key": SYS_KEY})
    set_layer(Scope.GROUP, "llm", {"model": "g"}, group=group_eng)
    set_layer(Scope.USER, "llm", {"temperature": 0.1}, user=user)
    with django_assert_num_queries(1):
        config = effective_config(user=user, kind="llm")
    assert config.sources == {
        "provider": "system",
        "api_key": "system",
        "model": "group:eng",
        "temperature": "user",
        "base_url": "default",
    }


ENV_KEY = "sk-env-eeeeeeeeeeeeee5555"


def test_environment_seeds_the_system_layer(user, set_layer, user_client):
    env = {"llm": {"provider": "anthropic", "model": "claude-env", "api_key": ENV_KEY}}
    with override_settings(PREFERENCES_ENV_DEFAULTS=env):
        config = effective_config(user=user, kind="llm")
        assert (config.provider, config.values["api_key"]) == ("anthropic", ENV_KEY)
        assert config.sources["api_key"] == "system"
        set_layer(Scope.SYSTEM, "llm", {"model": "claude-db"})
        config = effective_config(user=user, kind="llm")
        assert (config.values["model"], config.sources["model"]) == ("claude-db", "system")
        body = user_client.get("/api/v1/preferences/").content.decode()
        assert ENV_KEY not in body
        assert '"api_key":{"configured":true,"last4":"5555"}' in body
