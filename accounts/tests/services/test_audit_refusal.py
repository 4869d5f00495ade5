"""`audit_refusal`: one audit row per actor, action and reason a window; the rest counted."""

from __future__ import annotations

import pytest

from accounts.context import AuditContext
from accounts.models import AuditEvent, AuditRefusalWindow
from accounts.services import audit_refusal

pytestmark = pytest.mark.django_db


def test_refusals_are_aggregated_per_actor_and_reason(user, settings) -> None:
    assert settings.AUDIT_REFUSAL_WINDOW_SECONDS == 60  # the documented default: a minute
    settings.AUDIT_REFUSAL_WINDOW_SECONDS = 86400  # one window for the whole test
    calls = (
        [dict(actor=user, reason="r1")] * 5
        + [dict(actor=user, reason="r2")] * 2
        + [dict(actor=None, reason="r1", audit_context=AuditContext(client_ip="192.0.2.1"))] * 3
        + [dict(actor=None, reason="r1", audit_context=AuditContext(client_ip="192.0.2.2"))]
    )
    written = [audit_refusal(action="thing.refused", target_id="t", **call) for call in calls]
    assert [e is not None for e in written] == [True] + [False] * 4 + [True, False] + [
        True,
        False,
        False,
        True,
    ]
    counts = sorted(
        AuditRefusalWindow.objects.values_list("actor_key", "reason", "count", "first_event_id")
    )
    events = {e.pk: e for e in AuditEvent.objects.all()}
    assert [(k, r, c) for k, r, c, _ in counts] == [
        ("ip:192.0.2.1", "r1", 3),
        ("ip:192.0.2.2", "r1", 1),
        (f"user:{user.pk}", "r1", 5),
        (f"user:{user.pk}", "r2", 2),
    ]
    assert {first for *_, first in counts} == set(events)
    assert {e.details["reason"] for e in events.values()} == {"r1", "r2"}
    assert {e.client_ip for e in events.values() if e.actor_id is None} == {
        "192.0.2.1",
        "192.0.2.2",
    }
