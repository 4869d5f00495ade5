"""Bounded stats history per node: one sample per bucket over the last hour, for live charts."""

from __future__ import annotations

from django.db import models

from mesh.models.nodes import Node


class NodeStatsSample(models.Model):
    """The first heartbeat of one time bucket (`taken_at` is the bucket start)."""

    node = models.ForeignKey(Node, on_delete=models.CASCADE, related_name="stats_samples")
    taken_at = models.DateTimeField()
    cpu_percent = models.FloatField(default=0.0)
    memory_percent = models.FloatField(default=0.0)
    memory_used = models.BigIntegerField(default=0)
    memory_total = models.BigIntegerField(default=0)
    active_tasks = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["node", "taken_at"]
        constraints = [
            models.UniqueConstraint(fields=["node", "taken_at"], name="mesh_stats_one_per_bucket")
        ]

    def __str__(self) -> str:
        return f"{self.node_id} @ {self.taken_at:%H:%M:%S}"
