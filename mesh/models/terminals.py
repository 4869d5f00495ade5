"""Interactive terminal sessions on nodes and their recordings (output chunks with timings)."""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models

from mesh.models.nodes import Node


class TerminalStatus(models.TextChoices):
    OPENING = "opening", "opening"  # stored, not yet confirmed by the node
    RUNNING = "running", "running"
    EXITED = "exited", "exited"  # the shell ended (exit_code)
    REFUSED = "refused", "refused"  # the node refused it (error_code); nothing ran
    LOST = "lost", "lost"  # the node no longer holds it (agent restarted)


OPEN_TERMINAL_STATUSES = (TerminalStatus.OPENING, TerminalStatus.RUNNING)


class TerminalSession(models.Model):
    """One PTY on one node, opened by one user; its row is the only record of its state."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    node = models.ForeignKey(Node, on_delete=models.CASCADE, related_name="terminals")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    #: Set for the AI's persistent shell of one chat session on this node.
    chat_session_id = models.BigIntegerField(null=True, blank=True)
    status = models.CharField(
        max_length=16, choices=TerminalStatus.choices, default=TerminalStatus.OPENING
    )
    cols = models.PositiveSmallIntegerField(default=80)
    rows = models.PositiveSmallIntegerField(default=24)
    exit_code = models.IntegerField(null=True, blank=True)
    error_code = models.CharField(max_length=64, blank=True)
    #: Highest output seq stored, and the bytes stored in all.
    last_seq = models.PositiveBigIntegerField(default=0)
    output_bytes = models.PositiveBigIntegerField(default=0)
    #: Keystrokes and resizes stored for the node (`TerminalInput`): the highest seq given
    #: out, and the highest known to have gone onto a node's stream (what is past it waits).
    input_seq = models.PositiveBigIntegerField(default=0)
    input_sent_seq = models.PositiveBigIntegerField(default=0)
    #: A close asked for by the user, not yet confirmed by the node's exit.
    close_requested_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        indexes = [models.Index(fields=["node", "status"], name="mesh_terminal_node_status")]

    def __str__(self) -> str:
        return f"terminal {self.pk} on {self.node_id}"


class TerminalChunk(models.Model):
    """One numbered piece of a session's output; `at` is seconds since the session opened."""

    session = models.ForeignKey(TerminalSession, on_delete=models.CASCADE, related_name="chunks")
    seq = models.PositiveBigIntegerField()
    at = models.FloatField(default=0.0)
    data = models.BinaryField()

    class Meta:
        ordering = ["session_id", "seq"]
        constraints = [
            models.UniqueConstraint(fields=["session", "seq"], name="mesh_terminal_chunk_unique")
        ]

    def __str__(self) -> str:
        return f"{self.session_id}#{self.seq}"


class TerminalInputKind(models.TextChoices):
    INPUT = "input", "input"
    RESIZE = "resize", "resize"


class TerminalInput(models.Model):
    """One keystroke batch or resize for a session, numbered from 1 per session in the order
    stored, with a key the node applies once.

    Stored as it is sent live, so what is typed while the node's stream is not (yet) held (a hub
    restart, a node reconnecting) reaches the node in order when its stream joins. Rows are
    trimmed once sent (a few are kept to resend after a drop) and deleted with the session.
    """

    session = models.ForeignKey(TerminalSession, on_delete=models.CASCADE, related_name="inputs")
    seq = models.PositiveBigIntegerField()
    key = models.CharField(max_length=32)
    kind = models.CharField(max_length=8, choices=TerminalInputKind.choices)
    data = models.TextField(blank=True)
    cols = models.PositiveSmallIntegerField(default=0)
    rows = models.PositiveSmallIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["session_id", "seq"]
        constraints = [
            models.UniqueConstraint(fields=["session", "seq"], name="mesh_terminal_input_unique")
        ]

    def __str__(self) -> str:
        return f"{self.session_id}<{self.seq}"
