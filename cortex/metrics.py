"""Prometheus metrics of this process, recorded where things happen, plus database gauges.

Counters and histograms are process-local (each web process and each runmesh exports its
own; Prometheus sums them). The gauges that describe shared state (nodes by status, tasks by
status and kind, approvals waiting) are read from the database at scrape time by
`DatabaseCollector`, so every process reports the same numbers and none keeps them in memory.
`manage.py serve` runs web and gRPC in one process: one registry serves both at `/metrics`.
"""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Iterable, Iterator
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

logger = logging.getLogger("cortex.metrics")

_SECONDS_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 3600)
_FLUSH_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5)

MESH_STREAMS = Gauge(
    "cortex_mesh_streams_connected", "Node streams held open by this gRPC process."
)
TASK_DISPATCH_TO_START = Histogram(
    "cortex_task_dispatch_to_start_seconds",
    "Time from a task's dispatch request to the node starting it.",
    ["kind"],
    buckets=_SECONDS_BUCKETS,
)
TASK_RUN = Histogram(
    "cortex_task_run_seconds",
    "Time from a task's start on its node to its result.",
    ["kind", "status"],
    buckets=_SECONDS_BUCKETS,
)
TASK_OUTPUT_BYTES = Counter(
    "cortex_task_output_bytes_total", "Task output bytes stored from nodes.", ["stream"]
)
HEARTBEAT_FLUSH = Histogram(
    "cortex_heartbeat_flush_seconds",
    "Time of one batched heartbeat write (all beating nodes of this process).",
    buckets=_FLUSH_BUCKETS,
)
HEARTBEAT_FLUSH_FAILURES = Counter(
    "cortex_heartbeat_flush_failures_total", "Heartbeat flushes that failed (retried later)."
)
WS_CONNECTIONS = Gauge(
    "cortex_websocket_connections", "Open WebSocket connections of this process.", ["route"]
)
CHAT_TURNS = Counter(
    "cortex_chat_turns_total", "Chat turns ended, by provider and outcome.", ["provider", "outcome"]
)
PROVIDER_ERRORS = Counter(
    "cortex_provider_errors_total",
    "Errors from LLM providers, by provider and code.",
    ["provider", "code"],
)
DEPENDENCY_UNAVAILABLE = Counter(
    "cortex_dependency_unavailable_total",
    "Requests and units of work refused or retried because a dependency was down.",
    ["dependency"],
)


def observe_seconds(histogram: Histogram, seconds: float | None, **labels: str) -> None:
    """Record a duration; a missing or negative one (clock skew between hosts) is skipped."""
    if seconds is None or seconds < 0:
        return
    (histogram.labels(**labels) if labels else histogram).observe(seconds)


class DatabaseCollector(Collector):
    """Gauges computed from the database at scrape time (shared state, same in every process).

    A scrape while the database is down still answers: `cortex_database_up 0` and no gauges.
    """

    def collect(self) -> Iterator[GaugeMetricFamily]:
        up = GaugeMetricFamily("cortex_database_up", "Whether the scrape could read the database.")
        try:
            families = list(_database_families())
        except Exception as exc:  # any failure: report the database down, never fail the scrape
            from cortex.faults import is_database_outage

            logger.warning(
                "metrics: database gauges unavailable (%s)",
                type(exc).__name__,
                exc_info=not is_database_outage(exc),
            )
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        yield from families


def _database_families() -> Iterable[GaugeMetricFamily]:
    from mesh import selectors as mesh_selectors
    from sessions_app import selectors as session_selectors

    nodes = GaugeMetricFamily("cortex_nodes", "Active nodes by status.", labels=["status"])
    for status, count in mesh_selectors.node_counts_by_status().items():
        nodes.add_metric([status], count)
    tasks = GaugeMetricFamily(
        "cortex_tasks", "Tasks by status and kind.", labels=["status", "kind"]
    )
    for (status, kind), count in mesh_selectors.task_counts_by_status_kind().items():
        tasks.add_metric([status, kind], count)
    approvals = GaugeMetricFamily(
        "cortex_approvals_waiting", "Tool calls waiting for a person's approval."
    )
    approvals.add_metric([], session_selectors.approval_count_waiting())
    return [nodes, tasks, approvals]


_database_collector: DatabaseCollector | None = None


def registry() -> Any:
    """The process registry, with the database collector registered once."""
    global _database_collector
    if _database_collector is None:
        _database_collector = DatabaseCollector()
        REGISTRY.register(_database_collector)
    return REGISTRY


def render() -> tuple[bytes, str]:
    """The exposition text of this process and its content type (runs database queries)."""
    return generate_latest(registry()), CONTENT_TYPE_LATEST


# --- who may scrape -----------------------------------------------------------------------------


def scrape_allowed(*, authorization: str, peer: str | None) -> bool:
    """Whether a scraper may read metrics: fail closed.

    With `CORTEX_METRICS_TOKEN` set, a matching bearer token admits; with `CORTEX_METRICS_ALLOW`
    (CIDRs) set, a peer inside one admits. With neither set, only loopback may scrape. A
    token that is set but not presented, from a peer outside every listed network, is refused.
    """
    import hmac

    from django.conf import settings

    token = str(settings.METRICS_TOKEN or "")
    networks = list(settings.METRICS_ALLOW)
    if token:
        scheme, _, presented = authorization.partition(" ")
        if (
            scheme.lower() == "bearer"
            and presented
            and hmac.compare_digest(presented.strip().encode(), token.encode())
        ):
            return True
    if not token and not networks:
        networks = ["127.0.0.0/8", "::1/128"]
    return _peer_in(peer, networks)


def _peer_in(peer: str | None, networks: list[str]) -> bool:
    if not peer or not networks:
        return False
    try:
        address = ipaddress.ip_address(peer)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    for cidr in networks:
        try:
            if address in ipaddress.ip_network(cidr, strict=False):
                return True
        except ValueError:  # refused at startup by settings; never admits
            continue
    return False


# --- a metrics port of its own (runmesh) --------------------------------------------------------


class MetricsBindError(RuntimeError):
    """The metrics address could not be bound (one line for the operator)."""


def start_metrics_server(address: str) -> Any:
    """Serve `/metrics` on HOST:PORT from a daemon thread, behind `scrape_allowed`; returns the
    server (call `shutdown()` to stop). Used by `runmesh`, whose loop serves only gRPC."""
    import threading
    from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

    from prometheus_client import make_wsgi_app

    from cortex.embedded import split_address

    exposition = make_wsgi_app(registry())

    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        if environ.get("PATH_INFO") != "/metrics":
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"Not found. Metrics are at /metrics.\n"]
        if not scrape_allowed(
            authorization=environ.get("HTTP_AUTHORIZATION", ""), peer=environ.get("REMOTE_ADDR")
        ):
            start_response(
                "401 Unauthorized",
                [("Content-Type", "text/plain"), ("WWW-Authenticate", 'Bearer realm="metrics"')],
            )
            return [b"A valid metrics token (or an allowed address) is required.\n"]
        from django.db import close_old_connections

        # This thread is no request: connections are checked and returned around each scrape.
        close_old_connections()
        try:
            return list(exposition(environ, start_response))
        finally:
            close_old_connections()

    class _Quiet(WSGIRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002  # base signature
            return

    class _Server(WSGIServer):
        daemon_threads = True

    host, port = split_address(address, 9100)
    try:
        server = make_server(host, port, app, server_class=_Server, handler_class=_Quiet)
    except OSError as exc:
        raise MetricsBindError(f"cannot serve metrics on {address}: {exc}") from exc
    threading.Thread(target=server.serve_forever, name="metrics", daemon=True).start()
    return server
