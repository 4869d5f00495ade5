"""REST endpoints of preferences, end to end through the real stack."""

from __future__ import annotations

import pytest
import yaml
from django.contrib.auth.models import Group
from django.core.files.uploadedfile import SimpleUploadedFile

from accounts.models import AuditEvent
from preferences.models import PreferenceLayer, Scope
from providers.tests.servers import provider_server

pytestmark = pytest.mark.django_db

KEY = "sk-api-test-cccccccccccc3333"


def test_anonymous_is_refused(anon_client):
    assert anon_client.get("/api/v1/preferences/").status_code == 401
    assert anon_client.patch("/api/v1/preferences/llm/", {}, format="json").status_code == 401


def test_overview_reports_every_kind(user_client):
    body = user_client.get("/api/v1/preferences/").json()
    assert set(body) == {"llm", "tts", "stt"}
    assert body["llm"]["provider"] == ""
    assert body["llm"]["error"]["code"] == "provider_not_configured"
    assert body["tts"] == {
        "kind": "tts",
        "provider": "espeak",
        "values": {"voice": "en-us", "speed": 175},
        "sources": {"provider": "default", "voice": "default", "speed": "default"},
        "locked": {},
        "error": None,
    }


def test_patch_sets_masks_keeps_and_clears_secret(user, user_client):
    url = "/api/v1/preferences/llm/"
    response = user_client.patch(
        url, {"provider": "gemini", "model": "gemini-x", "api_key": KEY}, format="json"
    )
    assert response.status_code == 200
    body = response.json()
    assert body["api_key"] == {"configured": True, "last4": "3333"}
    assert (body["provider"], body["model"], body["scope"]) == ("gemini", "gemini-x", "user")
    token = PreferenceLayer.objects.get(user=user, kind="llm").secrets["api_key"]

    event = AuditEvent.objects.filter(action="preferences.layer_update").latest("id")
    assert event.details["changed_fields"] == ["provider", "api_key", "model"]
    assert KEY not in str(event.details)

    for masked in (body["api_key"], "****"):
        again = user_client.patch(url, {"api_key": masked, "model": "gemini-y"}, format="json")
        assert again.json()["api_key"] == {"configured": True, "last4": "3333"}
        assert PreferenceLayer.objects.get(user=user, kind="llm").secrets["api_key"] == token

    cleared = user_client.patch(url, {"api_key": None}, format="json").json()
    assert "api_key" not in cleared
    assert PreferenceLayer.objects.get(user=user, kind="llm").secrets == {}


def test_put_replaces_but_keeps_masked_secret(user, user_client):
    url = "/api/v1/preferences/llm/"
    user_client.patch(
        url, {"provider": "gemini", "model": "m", "temperature": 0.5, "api_key": KEY}, format="json"
    )
    body = user_client.put(
        url, {"provider": "gemini", "model": "n", "api_key": "****"}, format="json"
    ).json()
    assert "temperature" not in body
    assert (body["model"], body["api_key"]["last4"]) == ("n", "3333")


def test_invalid_input_is_rejected_per_field_and_nothing_changes(user, user_client):
    response = user_client.patch(
        "/api/v1/preferences/llm/",
        {"provider": "gemini", "temperature": "hot", "colour": "red"},
        format="json",
    )
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"colour": ["Unknown field."]}
    response = user_client.patch(
        "/api/v1/preferences/llm/",
        {"provider": "gemini", "temperature": "hot", "base_url": "http://10.0.0.1/"},
        format="json",
    )
    assert response.status_code == 400
    fields = response.json()["error"]["fields"]
    assert fields["temperature"] == ["Must be a number."]
    assert "refused address" in fields["base_url"][0]
    assert not PreferenceLayer.objects.exists()
    assert not AuditEvent.objects.filter(action="preferences.layer_update").exists()


def test_unknown_kind_is_404(user_client):
    assert user_client.get("/api/v1/preferences/video/").status_code == 404


def test_user_cannot_lock_or_limit(user_client):
    response = user_client.patch("/api/v1/preferences/llm/", {"locked": ["model"]}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {"locked": ["Unknown field."]}


def test_admin_endpoints_need_staff(user_client):
    assert user_client.get("/api/v1/admin/preferences/llm/").status_code == 403
    group = Group.objects.create(name="eng")
    url = f"/api/v1/admin/groups/{group.pk}/preferences/llm/"
    assert user_client.patch(url, {"provider": "gemini"}, format="json").status_code == 403
    assert not PreferenceLayer.objects.exists()


def test_admin_system_layer_with_locks_binds_users(user_client, staff_client):
    response = staff_client.patch(
        "/api/v1/admin/preferences/llm/",
        {"provider": "gemini", "model": "gemini-pro", "api_key": KEY, "locked": ["model"]},
        format="json",
    )
    assert response.status_code == 200
    body = response.json()
    assert body["locked"] == ["model"]
    assert body["api_key"] == {"configured": True, "last4": "3333"}
    refused = user_client.patch("/api/v1/preferences/llm/", {"model": "x"}, format="json")
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "field_locked"
    assert refused.json()["error"]["fields"] == {"model": ["Locked by system."]}
    effective = user_client.get("/api/v1/preferences/").json()["llm"]
    assert effective["sources"] == {
        "provider": "system",
        "model": "system",
        "api_key": "system",
        "base_url": "default",
    }
    assert effective["locked"] == {"model": "system"}


def test_admin_group_layer_limits(user, user_client, staff_client):
    group = Group.objects.create(name="eng")
    user.groups.add(group)
    url = f"/api/v1/admin/groups/{group.pk}/preferences/llm/"
    body = staff_client.patch(url, {"allowed_providers": ["gemini"]}, format="json").json()
    assert body["allowed_providers"] == ["gemini"]
    assert staff_client.get(url).json()["allowed_providers"] == ["gemini"]
    refused = user_client.patch(
        "/api/v1/preferences/llm/", {"provider": "anthropic"}, format="json"
    )
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "provider_not_allowed"
    assert staff_client.get("/api/v1/admin/groups/999999/preferences/llm/").status_code == 404
    bad = staff_client.patch(url, {"allowed_providers": ["nope"]}, format="json")
    assert bad.status_code == 400


def test_verify_effective_config_against_loopback_server(user, user_client):
    with provider_server("ok") as server:
        user_client.patch(
            "/api/v1/preferences/llm/",
            {
                "provider": "openai_compatible",
                "base_url": server.url + "/v1",
                "api_key": KEY,
                "model": "test-model",
            },
            format="json",
        )
        response = user_client.post("/api/v1/preferences/llm/verify/", {}, format="json")
    assert response.status_code == 200
    body = response.json()
    assert (body["ok"], body["error_code"], body["provider"]) == (True, "", "openai_compatible")
    event = AuditEvent.objects.get(action="preferences.verify")
    assert event.details["ok"] is True and event.details["provider"] == "openai_compatible"
    assert event.actor == user


def test_verify_given_config_without_saving(user_client):
    with provider_server("unauthorized") as server:
        response = user_client.post(
            "/api/v1/preferences/llm/verify/",
            {
                "provider": "anthropic",
                "base_url": server.url,
                "api_key": KEY,
                "model": "m",
                "timeout": 2,
            },
            format="json",
        )
    assert response.json()["error_code"] == "invalid_key"
    assert not PreferenceLayer.objects.exists()


def test_verify_without_provider_is_a_clear_error(user_client):
    response = user_client.post("/api/v1/preferences/llm/verify/", {}, format="json")
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "provider_not_configured"
    missing = user_client.post(
        "/api/v1/preferences/llm/verify/", {"provider": "gemini"}, format="json"
    )
    assert missing.json()["error"]["code"] == "missing_parameter"
    assert set(missing.json()["error"]["fields"]) == {"api_key", "model"}
    assert not AuditEvent.objects.filter(action="preferences.verify").exists()


def test_verify_local_tts_default(user_client):
    body = user_client.post("/api/v1/preferences/tts/verify/", {}, format="json").json()
    assert (body["provider"], body["ok"]) == ("espeak", True)


def test_export_leaves_secrets_out_and_import_round_trips(user, user_client):
    user_client.patch(
        "/api/v1/preferences/llm/",
        {"provider": "gemini", "model": "g", "api_key": KEY},
        format="json",
    )
    response = user_client.get("/api/v1/preferences/export/")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/yaml")
    text = response.content.decode()
    assert KEY not in text and "3333" not in text
    document = yaml.safe_load(text)
    assert document == {
        "version": 1,
        "preferences": {
            "llm": {"provider": "gemini", "model": "g", "api_key": {"configured": True}}
        },
    }
    token = PreferenceLayer.objects.get(user=user, kind="llm").secrets["api_key"]
    document["preferences"]["llm"]["model"] = "h"
    document["preferences"]["tts"] = {"provider": "espeak", "voice": "de"}
    upload = SimpleUploadedFile("prefs.yaml", yaml.safe_dump(document).encode(), "application/yaml")
    imported = user_client.post("/api/v1/preferences/import/", {"file": upload}, format="multipart")
    assert imported.status_code == 200, imported.content
    assert imported.json() == {"imported": ["llm", "tts"]}
    layer = PreferenceLayer.objects.get(user=user, kind="llm")
    assert (layer.values["model"], layer.secrets["api_key"]) == ("h", token)
    assert PreferenceLayer.objects.get(user=user, kind="tts").values == {"voice": "de"}


def test_import_raw_yaml_body_is_all_or_nothing(user, user_client):
    text = yaml.safe_dump(
        {
            "version": 1,
            "preferences": {
                "tts": {"provider": "espeak", "voice": "de"},
                "llm": {"provider": "gemini", "temperature": "hot"},
                "stt": {"provider": "nope"},
            },
        }
    )
    response = user_client.generic(
        "POST", "/api/v1/preferences/import/", text, content_type="application/yaml"
    )
    assert response.status_code == 400
    assert response.json()["error"]["fields"] == {
        "preferences.llm.temperature": ["Must be a number."],
        "preferences.stt.provider": [
            "Unknown provider; valid: gemini, openai_compatible, pocketsphinx."
        ],
    }
    assert not PreferenceLayer.objects.exists()
    assert not AuditEvent.objects.filter(action__startswith="preferences.").exists()
    bad = user_client.generic(
        "POST", "/api/v1/preferences/import/", "a: [", content_type="application/yaml"
    )
    assert bad.json()["error"]["fields"] == {"file": ["Not valid YAML."]}


def test_admin_pages_mask_secrets_and_save_through_service(staff_user, client):
    client.force_login(staff_user)
    add = client.post(
        "/admin/preferences/preferencelayer/add/",
        {
            "scope": "system",
            "kind": "llm",
            "provider": "gemini",
            "values": '{"model": "g"}',
            "locked": "[]",
            "allowed_providers": "[]",
            "allowed_models": "[]",
            "api_key": KEY,
        },
    )
    assert add.status_code == 302, add.content.decode()[:2000]
    layer = PreferenceLayer.objects.get(scope=Scope.SYSTEM, kind="llm")
    assert layer.values == {"model": "g"} and set(layer.secrets) == {"api_key"}
    assert AuditEvent.objects.filter(action="preferences.layer_update", source="admin").exists()
    page = client.get(f"/admin/preferences/preferencelayer/{layer.pk}/change/").content.decode()
    assert "configured (…3333)" in page
    assert KEY not in page


def test_admin_form_reports_service_errors_and_writes_nothing(staff_user, client):
    client.force_login(staff_user)
    response = client.post(
        "/admin/preferences/preferencelayer/add/",
        {
            "scope": "system",
            "kind": "llm",
            "provider": "nope",
            "values": '{"temperature": "hot"}',
            "locked": "[]",
            "allowed_providers": "[]",
            "allowed_models": "[]",
        },
    )
    assert response.status_code == 200
    page = response.content.decode()
    assert "Unknown provider" in page
    assert not PreferenceLayer.objects.exists()
    assert not AuditEvent.objects.filter(action="preferences.layer_update").exists()
