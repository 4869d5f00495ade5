"""Audit of refused node calls (bad invites on Join, bad credentials on Connect), aggregated.

A flood must not drown the audit log, and the log is append-only: the count per node id,
reason and minute lives in `RefusalCount` (incremented by the database, so every runmesh
process agrees), and an audit row is appended only when a window's count reaches 1, 10, 100,
1,000, … (each row carries that count). 200 refusals in a minute are three rows. The presented
secret never appears: at most an 8-hex fingerprint of it.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.db.models import F
from django.utils import timezone

from accounts.context import GRPC_CONTEXT, AuditContext
from accounts.services import audit_record
from mesh.models import Node, RefusalCount
from mesh.services._common import sha256_hex

logger = logging.getLogger("cortex.mesh")

WINDOW = timedelta(minutes=1)
KEEP_COUNTS = timedelta(days=1)
UNKNOWN_NODE = "*"


def _milestone(count: int) -> bool:
    """1, 10, 100, …: the counts at which a window appends an audit row."""
    return count == int(10 ** (len(str(count)) - 1))


def _key(node_id: str) -> str:
    """The node id when such a node exists; unknown ids share one key (no row per guess)."""
    if node_id and len(node_id) <= 63 and Node.objects.filter(node_id=node_id).exists():
        return node_id
    return UNKNOWN_NODE


def _count(*, action: str, key: str, reason: str) -> tuple[int, RefusalCount | None]:
    """Add one to the window's counter; (count now, the row when it is new)."""
    now = timezone.now()
    window = now.replace(second=0, microsecond=0)
    match = RefusalCount.objects.filter(action=action, key=key, reason=reason, window_start=window)
    for _ in range(2):  # an insert that loses a race becomes an update
        if match.update(count=F("count") + 1, last_at=now):
            return match.values_list("count", flat=True)[0], None
        try:
            with transaction.atomic():
                row = RefusalCount.objects.create(
                    action=action, key=key, reason=reason, window_start=window, last_at=now
                )
        except IntegrityError:
            continue
        RefusalCount.objects.filter(window_start__lt=now - KEEP_COUNTS).delete()
        return 1, row
    return 0, None  # pragma: no cover - the row exists after a lost race


def refusal_record(
    *,
    action: str,
    node_id: str,
    reason: str,
    secret: str = "",
    audit_context: AuditContext = GRPC_CONTEXT,
) -> None:
    """Count one refusal and audit it when its window reaches a milestone.

    Never raises: an audit failure must not change what the caller answers (logged).
    """
    try:
        with transaction.atomic():
            key = _key(node_id)
            count, _ = _count(action=action, key=key, reason=reason)
            if not _milestone(count):
                return
            details = {
                "reason": reason,
                "count": count,
                "window_seconds": int(WINDOW.total_seconds()),
                "node_id": node_id[:63],
            }
            if secret:
                details["presented"] = sha256_hex(secret)[:8]
            audit_record(
                actor=None,
                action=action,
                target_type="node",
                target_id=key,
                audit_context=audit_context,
                details=details,
            )
    except Exception:
        logger.exception("refusal audit failed (%s, %s)", action, reason)


def credential_refusal_record(
    *, node_id: str, credential: str, audit_context: AuditContext = GRPC_CONTEXT
) -> None:
    """A Connect (or other call) refused for its node credential."""
    if not node_id or not credential:
        reason = "credential_missing"
    elif _key(node_id) == UNKNOWN_NODE:
        reason = "node_unknown"
    else:
        reason = "credential_invalid"
    refusal_record(
        action="node.credential_refused",
        node_id=node_id,
        reason=reason,
        secret=credential,
        audit_context=audit_context,
    )
