"""`manage.py ensure_admin`: create the first admin when none exists (used by `make run`)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand

from accounts.context import AuditContext
from accounts.services import admin_ensure


class Command(BaseCommand):
    help = "Create the first admin from CORTEX_ADMIN_EMAIL / CORTEX_ADMIN_PASSWORD if none exists."

    def handle(self, *args: Any, **options: Any) -> None:
        email = settings.ADMIN_EMAIL or "admin@localhost"
        user, generated = admin_ensure(
            email=email,
            password=settings.ADMIN_PASSWORD or None,
            audit_context=AuditContext.command("ensure_admin"),
        )
        if user is None:
            self.stdout.write("An admin exists already; sign in with your admin account.")
            return
        if generated:
            self.stdout.write(
                f"Created admin {user.email} with password {generated} "
                "(shown once; sign in at http://127.0.0.1:8000/console/ or /admin/)"
            )
        else:
            self.stdout.write(f"Created admin {user.email} (password from CORTEX_ADMIN_PASSWORD).")
