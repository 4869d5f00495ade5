"""Webhook deliveries seen recently: one row per accepted signature, so none is accepted twice."""

from __future__ import annotations

from django.db import models


class WebhookDelivery(models.Model):
    """A signed webhook request that was accepted (or refused only after its signature held).

    The unique (agent, digest) row is the replay guard: a second insert of the same signed
    request is an IntegrityError, whichever process receives it. Rows older than the
    signature window are swept (a request that old is refused as stale anyway).
    """

    agent = models.ForeignKey(
        "agents.Agent", on_delete=models.CASCADE, related_name="webhook_deliveries"
    )
    #: SHA-256 (hex) of the request's signature, which covers its timestamp and body.
    digest = models.CharField(max_length=64)
    received_at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=("agent", "digest"), name="webhook_delivery_once"),
        ]

    def __str__(self) -> str:
        return f"Delivery {self.digest[:12]} to agent {self.agent_id}"
