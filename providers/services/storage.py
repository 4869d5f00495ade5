"""Keeping recordings: through Django's storage API, never as raw filesystem paths."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.utils import timezone

from providers.audio import sniff_format

if TYPE_CHECKING:
    from accounts.models import User

EXTENSIONS = {"wav": "wav", "mp3": "mp3", "ogg": "ogg", "webm": "webm"}


def audio_save(*, user: User, data: bytes) -> str:
    """Store an accepted recording; returns the storage name a FileField can hold.

    The extension comes from the sniffed format, never from a client's file name.
    """
    fmt = sniff_format(data[:64])
    name = f"voice/{user.pk}/{timezone.now():%Y/%m/%d}/{uuid.uuid4().hex}.{EXTENSIONS[fmt]}"
    return default_storage.save(name, ContentFile(data))
