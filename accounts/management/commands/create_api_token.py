"""`manage.py create_api_token EMAIL [--name N] [--expires-days D]`: print a new token once."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from accounts.context import AuditContext
from accounts.selectors import user_find_active_by_email
from accounts.services import token_create


class Command(BaseCommand):
    help = "Create a personal API token for a user and print only the token (shown once)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("email")
        parser.add_argument("--name", default="cli")
        parser.add_argument("--expires-days", type=int, default=None)

    def handle(self, *args: Any, **options: Any) -> None:
        user = user_find_active_by_email(email=options["email"])
        if user is None:
            raise CommandError("No active user with this email.")
        days = options["expires_days"]
        if days is not None and days < 1:
            raise CommandError("--expires-days must be at least 1.")
        _, plaintext = token_create(
            actor=None,
            user=user,
            name=options["name"],
            expires_days=days,
            audit_context=AuditContext.command("create_api_token"),
        )
        self.stdout.write(plaintext)
