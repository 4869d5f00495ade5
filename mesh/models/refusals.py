"""Counters of refused node calls per key, reason and minute: what keeps a flood of bad joins
or credentials from drowning the (append-only) audit log."""

from __future__ import annotations

from django.db import models


class RefusalCount(models.Model):
    """How often one kind of refusal happened to one node id in one window (a minute).

    `key` is the node id presented when such a node exists, else "*": random ids collapse
    into one row. Incremented in the database (`count = count + 1`), so every runmesh process
    shares the one count.
    """

    action = models.CharField(max_length=64)
    key = models.CharField(max_length=63)
    reason = models.CharField(max_length=64)
    window_start = models.DateTimeField()
    count = models.PositiveIntegerField(default=1)
    last_at = models.DateTimeField()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["action", "key", "reason", "window_start"],
                name="mesh_refusal_one_per_window",
            )
        ]
        indexes = [models.Index(fields=["window_start"])]

    def __str__(self) -> str:
        return f"{self.action} {self.key} {self.reason} x{self.count}"
