"""mesh/services/credentials.py: a rotation is minted only on request and takes effect only when
the node confirms the new credential's fingerprint."""

from __future__ import annotations

import pytest

from accounts.models import AuditEvent
from mesh.models import CredentialState, NodeCredential
from mesh.services.credentials import (
    credential_authenticate,
    credential_confirm,
    credential_mint_rotation,
    credential_rotate,
)
from mesh.services.invites import invite_exchange

pytestmark = pytest.mark.django_db


@pytest.fixture
def joined(make_node):  # type: ignore[no-untyped-def]
    node, invite = make_node("rot-1")
    _, credential = invite_exchange(node_id="rot-1", invite_token=invite)
    return node, credential


def test_credential_mint_rotation_needs_a_request(joined, staff_user) -> None:  # type: ignore[no-untyped-def]
    node, _ = joined
    assert credential_mint_rotation(node_id="rot-1") is None
    assert credential_mint_rotation(node_id="no-such-node") is None

    credential_rotate(actor=staff_user, node=node)
    secret = credential_mint_rotation(node_id="rot-1")
    assert secret is not None and secret.startswith("cnc_")
    pending = NodeCredential.objects.get(node=node, state=CredentialState.PENDING)
    assert pending.secret_hash != secret and secret not in pending.fingerprint
    assert credential_mint_rotation(node_id="rot-1") is None  # the request was claimed


def test_a_second_rotation_revokes_the_unconfirmed_one(joined, staff_user) -> None:  # type: ignore[no-untyped-def]
    node, _ = joined
    credential_rotate(actor=staff_user, node=node)
    first = credential_mint_rotation(node_id="rot-1")
    credential_rotate(actor=staff_user, node=node)
    second = credential_mint_rotation(node_id="rot-1")
    assert first is not None and second is not None
    assert NodeCredential.objects.filter(node=node, state=CredentialState.PENDING).count() == 1
    assert credential_authenticate(node_id="rot-1", credential=first) is None
    assert credential_authenticate(node_id="rot-1", credential=second) == node


def test_credential_confirm_swaps_credentials_once(joined, staff_user) -> None:  # type: ignore[no-untyped-def]
    node, old = joined
    credential_rotate(actor=staff_user, node=node)
    new = credential_mint_rotation(node_id="rot-1")
    assert new is not None
    pending = NodeCredential.objects.get(node=node, state=CredentialState.PENDING)
    # Before the node confirms, both work (a lost confirmation must not lock the node out).
    assert credential_authenticate(node_id="rot-1", credential=old) == node
    assert credential_authenticate(node_id="rot-1", credential=new) == node

    assert credential_confirm(node_id="rot-1", fingerprint="000000000000") is False
    assert credential_confirm(node_id="other", fingerprint=pending.fingerprint) is False
    assert credential_confirm(node_id="rot-1", fingerprint=pending.fingerprint) is True
    assert credential_confirm(node_id="rot-1", fingerprint=pending.fingerprint) is False

    assert credential_authenticate(node_id="rot-1", credential=old) is None
    assert credential_authenticate(node_id="rot-1", credential=new) == node
    row = AuditEvent.objects.get(action="node.credential_confirmed")
    assert row.target_id == "rot-1" and row.source == "grpc"
    assert row.details == {"fingerprint": pending.fingerprint}
    assert new not in str(row.details) and old not in str(row.details)
