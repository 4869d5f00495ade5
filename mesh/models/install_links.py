"""One-line install links: short-lived, single-use tokens (SHA-256 stored) for a node's bundle."""

from __future__ import annotations

from django.conf import settings
from django.db import models


class InstallLinkStage(models.TextChoices):
    SCRIPT = "script", "install script"  # the URL an admin pastes; its use mints a bundle token
    BUNDLE = "bundle", "bundle download"  # embedded in the script, fetched by it once


class NodeInstallLink(models.Model):
    """A token that works once before `expires_at`; the plaintext is never stored."""

    node = models.ForeignKey("mesh.Node", on_delete=models.CASCADE, related_name="install_links")
    stage = models.CharField(max_length=8, choices=InstallLinkStage.choices)
    token_hash = models.CharField(max_length=64, unique=True)
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    expires_at = models.DateTimeField()
    used_at = models.DateTimeField(null=True, blank=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"install {self.stage} {self.pk} for {self.node_id}"
