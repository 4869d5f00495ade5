"""Fleet-wide counts read at scrape time (`/metrics`): aggregates only, with no grants, because
the scraper is an operator and no single object is named."""

from __future__ import annotations

from django.db.models import Count

from mesh.models import OPEN_STATUSES, Node, NodeStatus, Task, TaskKind


def node_counts_by_status() -> dict[str, int]:
    """Active nodes by status; every status appears, zero included (for alert rules)."""
    counts = {status.value: 0 for status in NodeStatus}
    rows = Node.objects.filter(is_active=True).order_by().values_list("status")
    for status, count in rows.annotate(n=Count("id")):
        counts[status] = count
    return counts


def task_counts_by_status_kind() -> dict[tuple[str, str], int]:
    """Tasks by (status, kind); open statuses appear for every kind, zero included."""
    counts = {(str(status), kind.value): 0 for status in OPEN_STATUSES for kind in TaskKind}
    rows = Task.objects.order_by().values_list("status", "kind")
    for status, kind, count in rows.annotate(n=Count("id")):
        counts[(status, kind)] = count
    return counts
