"""mesh/services/invites.py: `invite_pending` says whether a node still has a usable invite."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from mesh.models import NodeInvite
from mesh.services.invites import invite_exchange, invite_issue, invite_pending

pytestmark = pytest.mark.django_db


def test_invite_pending_until_used_expired_or_replaced(staff_user, make_node) -> None:  # type: ignore[no-untyped-def]
    node, token = make_node("i1")
    other, _ = make_node("i2")
    assert invite_pending(node=node) is True

    invite_exchange(node_id="i1", invite_token=token)
    assert invite_pending(node=node) is False  # used
    assert invite_pending(node=other) is True  # another node's invite is its own

    invite_issue(actor=staff_user, node=node)
    assert invite_pending(node=node) is True
    NodeInvite.objects.filter(node=node).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert invite_pending(node=node) is False  # expired

    NodeInvite.objects.filter(node=other).update(revoked_at=timezone.now())
    assert invite_pending(node=other) is False  # revoked
