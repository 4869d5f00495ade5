"""User lifecycle services."""

from __future__ import annotations

import secrets

from django.db import transaction

from accounts.models import User
from accounts.services.audit import audit_record


@transaction.atomic
def admin_ensure(*, email: str, password: str | None) -> tuple[User | None, str | None]:
    """Create the first admin when no admin exists.

    Returns (user, generated_password): the password is returned only when it was generated,
    so the caller can print it once. Returns (None, None) when an admin already exists.
    """
    if User.objects.filter(is_staff=True).exists():
        return None, None
    generated = None
    if not password:
        generated = secrets.token_urlsafe(16)
        password = generated
    user = User.objects.create_superuser(email=email, password=password)
    audit_record(
        actor=None,
        action="user.created",
        target_type="user",
        target_id=user.pk,
        source="command",
        details={"email": user.email, "is_staff": True},
    )
    return user, generated
