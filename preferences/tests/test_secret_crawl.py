"""Store keys at every layer, call every endpoint, page and export: the plain keys never appear."""

from __future__ import annotations

import logging

import pytest
import yaml
from django.contrib.auth.models import Group
from django.test import Client

from accounts.models import AuditEvent
from preferences.models import PreferenceLayer
from providers.tests.servers import provider_server

pytestmark = pytest.mark.django_db

SYSTEM_KEY = "sk-crawl-system-5f3a9c1e7d2b4a68"
GROUP_KEY = "sk-crawl-group-8b1d4e7f2a9c3d51"
USER_KEY = "sk-crawl-user-2c7e9a4b1f6d8e30"
SESSION_KEY = "sk-crawl-session-9d2f7b3e5a1c4f86"
KEYS = (SYSTEM_KEY, GROUP_KEY, USER_KEY, SESSION_KEY)


def _dump(response) -> str:  # type: ignore[no-untyped-def]
    headers = "\n".join(f"{k}: {v}" for k, v in response.items())
    return f"{response.status_code}\n{headers}\n{response.content.decode(errors='replace')}"


def test_plain_keys_never_leave(user, user_client, staff_user, staff_client, caplog):
    caplog.set_level(logging.DEBUG)
    group = Group.objects.create(name="eng")
    user.groups.add(group)
    seen: list[str] = []
    with provider_server("error") as server:
        base = server.url + "/v1"
        seen.append(
            _dump(
                staff_client.patch(
                    "/api/v1/admin/preferences/llm/",
                    {
                        "provider": "openai_compatible",
                        "base_url": base,
                        "api_key": SYSTEM_KEY,
                        "model": "test-model",
                    },
                    format="json",
                )
            )
        )
        for kind in ("tts", "stt"):
            seen.append(
                _dump(
                    staff_client.patch(
                        f"/api/v1/admin/groups/{group.pk}/preferences/{kind}/",
                        {"provider": "openai_compatible", "base_url": base, "api_key": GROUP_KEY},
                        format="json",
                    )
                )
            )
        seen.append(
            _dump(
                user_client.patch("/api/v1/preferences/llm/", {"api_key": USER_KEY}, format="json")
            )
        )
        seen.append(
            _dump(user_client.put("/api/v1/preferences/tts/", {"api_key": "****"}, format="json"))
        )
        for path in (
            "/api/v1/preferences/",
            "/api/v1/preferences/llm/",
            "/api/v1/preferences/tts/",
            "/api/v1/preferences/stt/",
            "/api/v1/preferences/export/",
        ):
            seen.append(_dump(user_client.get(path)))
        for kind in ("llm", "tts", "stt"):
            seen.append(_dump(staff_client.get(f"/api/v1/admin/preferences/{kind}/")))
            seen.append(
                _dump(staff_client.get(f"/api/v1/admin/groups/{group.pk}/preferences/{kind}/"))
            )
            # The provider answers 500 and echoes the key it was sent: it must be scrubbed.
            seen.append(
                _dump(user_client.post(f"/api/v1/preferences/{kind}/verify/", {}, format="json"))
            )
        seen.append(
            _dump(
                user_client.post(
                    "/api/v1/preferences/llm/verify/", {"api_key": SESSION_KEY}, format="json"
                )
            )
        )
        assert len(server.requests) == 4
        assert server.requests[0]["headers"]["authorization"] == f"Bearer {USER_KEY}"

    export = user_client.get("/api/v1/preferences/export/").content.decode()
    imported = user_client.generic(
        "POST", "/api/v1/preferences/import/", export, content_type="application/yaml"
    )
    assert imported.status_code == 200
    seen.append(_dump(imported))
    assert yaml.safe_load(export)["preferences"]["llm"] == {"api_key": {"configured": True}}

    seen.append(_dump(staff_client.get("/api/v1/audit/")))
    admin = Client()
    admin.force_login(staff_user)
    seen.append(_dump(admin.get("/admin/preferences/preferencelayer/")))
    for layer in PreferenceLayer.objects.all():
        seen.append(_dump(admin.get(f"/admin/preferences/preferencelayer/{layer.pk}/change/")))

    everything = "\n".join(seen)
    assert "configured" in everything
    logs = "\n".join(r.getMessage() for r in caplog.records) + caplog.text
    audit = "\n".join(str(e.details) for e in AuditEvent.objects.all())
    stored = "\n".join(
        str(layer.values) + str(layer.secrets) for layer in PreferenceLayer.objects.all()
    )
    for key in KEYS:
        assert everything.count(key) == 0
        assert logs.count(key) == 0
        assert audit.count(key) == 0
        assert stored.count(key) == 0
