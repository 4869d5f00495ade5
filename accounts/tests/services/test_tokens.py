"""API token services: revocation is immediate and audited once; authentication fails closed."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from accounts.models import ApiToken, AuditEvent
from accounts.services import token_authenticate, token_create, token_revoke
from accounts.services.tokens import tokens_revoke_all

pytestmark = pytest.mark.django_db


def test_token_authenticate_finds_the_owner_and_records_last_use(user):
    token, plaintext = token_create(actor=user, user=user, name="ci")
    assert token_authenticate(token=plaintext) == user
    token.refresh_from_db()
    first_use = token.last_used_at
    assert first_use is not None
    # Within the resolution the row is not written again.
    assert token_authenticate(token=plaintext) == user
    token.refresh_from_db()
    assert token.last_used_at == first_use


@pytest.mark.parametrize(
    "presented",
    ["", "not-a-token", "ctx_" + "a" * 300, "ctx_unknownbutwellformed"],
)
def test_token_authenticate_refuses_malformed_or_unknown(user, presented):
    token_create(actor=user, user=user, name="ci")
    assert token_authenticate(token=presented) is None


def test_token_authenticate_refuses_expired_revoked_and_inactive_owner(user, make_user):
    expired, expired_text = token_create(actor=user, user=user, name="old", expires_days=1)
    ApiToken.objects.filter(pk=expired.pk).update(expires_at=timezone.now() - timedelta(seconds=1))
    assert token_authenticate(token=expired_text) is None
    revoked, revoked_text = token_create(actor=user, user=user, name="gone")
    token_revoke(actor=user, token=revoked)
    assert token_authenticate(token=revoked_text) is None
    bob = make_user("bob@example.com")
    _, bob_text = token_create(actor=bob, user=bob, name="bob")
    bob.is_active = False
    bob.save(update_fields=["is_active"])
    assert token_authenticate(token=bob_text) is None


def test_token_revoke_twice_is_one_audit_event_without_the_secret(user):
    token, plaintext = token_create(actor=user, user=user, name="ci")
    token_revoke(actor=user, token=token)
    revoked_at = ApiToken.objects.get(pk=token.pk).revoked_at
    assert revoked_at is not None
    token_revoke(actor=user, token=token)
    assert ApiToken.objects.get(pk=token.pk).revoked_at == revoked_at
    events = AuditEvent.objects.filter(action="token.revoked")
    assert events.count() == 1
    assert events.get().details == {"user": user.pk, "name": "ci", "prefix": token.prefix}
    assert plaintext not in str(list(AuditEvent.objects.values_list("details", flat=True)))


def test_tokens_revoke_all_revokes_only_that_users_live_tokens(user, make_user):
    bob = make_user("bob@example.com")
    token_create(actor=user, user=user, name="a")
    already, _ = token_create(actor=user, user=user, name="b")
    token_revoke(actor=user, token=already)
    _, bob_text = token_create(actor=bob, user=bob, name="bob")
    assert tokens_revoke_all(user=user) == 1
    assert not ApiToken.objects.filter(user=user, revoked_at__isnull=True).exists()
    assert token_authenticate(token=bob_text) == bob
    assert tokens_revoke_all(user=user) == 0
