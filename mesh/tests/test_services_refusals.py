"""mesh/services/refusals.py: a refused credential is audited with a reason that tells missing,
unknown and wrong apart, and never with the secret."""

from __future__ import annotations

import json

import pytest

from accounts.models import AuditEvent
from mesh.models import RefusalCount
from mesh.services.refusals import UNKNOWN_NODE, credential_refusal_record

pytestmark = pytest.mark.django_db

SECRET = "cnc_this-is-a-presented-secret-0123456789"


@pytest.mark.parametrize(
    ("node_id", "credential", "reason", "key"),
    [
        ("r1", "", "credential_missing", "r1"),
        ("", SECRET, "credential_missing", UNKNOWN_NODE),
        ("ghost", SECRET, "node_unknown", UNKNOWN_NODE),
        ("r1", SECRET, "credential_invalid", "r1"),
    ],
)
def test_credential_refusal_record_reasons(make_node, node_id, credential, reason, key) -> None:  # type: ignore[no-untyped-def]
    make_node("r1")
    credential_refusal_record(node_id=node_id, credential=credential)
    row = AuditEvent.objects.get(action="node.credential_refused")
    assert (row.target_id, row.details["reason"], row.details["count"]) == (key, reason, 1)
    assert row.source == "grpc"
    text = json.dumps([row.target_id, row.details])
    assert SECRET not in text and SECRET[4:12] not in text
    assert RefusalCount.objects.get().reason == reason


def test_credential_refusals_are_counted_not_each_audited(make_node) -> None:  # type: ignore[no-untyped-def]
    make_node("r1")
    for _ in range(12):
        credential_refusal_record(node_id="r1", credential=SECRET)
    rows = AuditEvent.objects.filter(action="node.credential_refused").order_by("id")
    assert [r.details["count"] for r in rows] == [1, 10]
    assert RefusalCount.objects.get().count == 12
