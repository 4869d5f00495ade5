"""Single-use WebSocket tickets for scripts that cannot send a session cookie."""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta

from django.utils import timezone

from accounts.models import User, WsTicket

TICKET_TTL_SECONDS = 30


def _hash(ticket: str) -> str:
    return hashlib.sha256(ticket.encode("utf-8")).hexdigest()


def ws_ticket_issue(*, user: User) -> str:
    """Issue a ticket valid for one WebSocket connect within 30 s; only its hash is stored."""
    plaintext = secrets.token_urlsafe(32)
    now = timezone.now()
    ticket = WsTicket(
        user=user,
        ticket_hash=_hash(plaintext),
        created_at=now,
        expires_at=now + timedelta(seconds=TICKET_TTL_SECONDS),
    )
    ticket.full_clean()
    ticket.save()
    # Expired tickets are useless; drop them here so the table stays small without a cron job.
    WsTicket.objects.filter(expires_at__lt=now - timedelta(minutes=5)).delete()
    return plaintext


def ws_ticket_redeem(*, ticket: str) -> User | None:
    """The active user of an unused, unexpired ticket, marking it used; otherwise None."""
    if not ticket or len(ticket) > 200:
        return None
    now = timezone.now()
    # One conditional UPDATE makes the use atomic: two racing connects cannot both win.
    claimed = WsTicket.objects.filter(
        ticket_hash=_hash(ticket), used_at__isnull=True, expires_at__gt=now
    ).update(used_at=now)
    if claimed != 1:
        return None
    row = WsTicket.objects.select_related("user").get(ticket_hash=_hash(ticket))
    return row.user if row.user.is_active else None
