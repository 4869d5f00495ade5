"""Ending a user's browser sessions (on deactivation)."""

from __future__ import annotations

from django.contrib.auth import SESSION_KEY
from django.contrib.sessions.models import Session
from django.utils import timezone

from accounts.models import User


def user_sessions_end(*, user: User) -> int:
    """Delete every stored session of `user`; returns how many were deleted.

    Sessions are not indexed by user, so live ones are scanned; a hub has few. Inactive users
    are refused by every authentication path anyway, this makes the sign-out immediate.
    """
    doomed = [
        session.session_key
        for session in Session.objects.filter(expire_date__gt=timezone.now()).iterator()
        if str(session.get_decoded().get(SESSION_KEY)) == str(user.pk)
    ]
    if doomed:
        Session.objects.filter(session_key__in=doomed).delete()
    return len(doomed)
