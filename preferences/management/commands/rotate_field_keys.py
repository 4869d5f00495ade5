"""`manage.py rotate_field_keys`: re-encrypt every stored secret with the first key."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from preferences.errors import SecretUnavailable
from preferences.services import field_keys_rotate


class Command(BaseCommand):
    help = "Re-encrypt every stored secret with the first key of CORTEX_FIELD_KEYS."

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            count = field_keys_rotate()
        except SecretUnavailable as exc:
            raise CommandError(exc.message) from None
        self.stdout.write(f"Re-encrypted {count} secret(s) with the first key.")
