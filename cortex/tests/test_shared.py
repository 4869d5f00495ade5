import json
import logging

import pytest

from accounts.context import AuditContext
from accounts.models import AuditEvent
from accounts.services import audit_record
from cortex.logging import JsonFormatter, RequestIdFilter, request_id_var
from cortex.redaction import REDACTED, redact
from cortex.services import model_update


def test_redact_hides_secret_looking_keys_at_any_depth():
    data = {
        "api_key": "sk-123",
        "nested": {"password": "p", "name": "n"},
        "items": [{"token": "t"}],
    }
    assert redact(data) == {
        "api_key": REDACTED,
        "nested": {"password": REDACTED, "name": "n"},
        "items": [{"token": REDACTED}],
    }
    assert redact({"token": None}) == {"token": None}
    assert redact({"allow_password_login": True}) == {"allow_password_login": True}


def test_json_formatter_writes_one_object_with_request_id_and_extras():
    record = logging.LogRecord("cortex.x", logging.INFO, __file__, 1, "hello %s", ("bob",), None)
    token = request_id_var.set("req-1")
    try:
        RequestIdFilter().filter(record)
    finally:
        request_id_var.reset(token)
    record.node_id = "n1"
    line = JsonFormatter().format(record)
    payload = json.loads(line)
    assert payload["message"] == "hello bob"
    assert payload["request_id"] == "req-1"
    assert payload["node_id"] == "n1"
    assert "\n" not in line


@pytest.mark.django_db
def test_model_update_saves_only_changed_listed_fields(user):
    _, changed = model_update(instance=user, fields=["display_name"], data={"display_name": "Al"})
    assert changed
    user.refresh_from_db()
    assert user.display_name == "Al"
    _, changed = model_update(
        instance=user, fields=["display_name"], data={"display_name": "Al", "is_staff": True}
    )
    assert not changed
    user.refresh_from_db()
    assert user.is_staff is False


@pytest.mark.django_db
def test_audit_events_are_append_only_and_redacted(user, rf):
    request = rf.get("/", HTTP_USER_AGENT="pytest", REMOTE_ADDR="10.1.2.3")
    event = audit_record(
        actor=user,
        action="thing.done",
        target_type="thing",
        target_id=5,
        audit_context=AuditContext.from_request(request),
        details={"password": "hunter2", "n": 1},
    )
    event.refresh_from_db()
    assert event.details == {"password": REDACTED, "n": 1}
    assert event.client_ip == "10.1.2.3"
    assert event.user_agent == "pytest"
    assert event.actor_label == "alice@example.com"
    with pytest.raises(PermissionError):
        event.save()
    with pytest.raises(PermissionError):
        event.delete()
    with pytest.raises(PermissionError):
        AuditEvent.objects.all().delete()
    with pytest.raises(PermissionError):
        AuditEvent.objects.update(action="x")
    assert AuditEvent.objects.count() == 1
