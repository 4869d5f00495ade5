"""Django's PostgreSQL backend with a connection pool that comes back quickly after an outage.

psycopg_pool retries a failed connection with a doubling delay until `reconnect_timeout`; after a
database restart of a minute its slots could wait half a minute more before trying again, and
every request meanwhile waits out the pool timeout (503). Here the delay between attempts is
capped at RECONNECT_MAX_DELAY, and the pool never gives a slot up during a long outage.
Connections are checked on checkout when CONN_HEALTH_CHECKS is on (Django passes psycopg_pool's
`check_connection`), so a connection the server dropped never reaches a request.
"""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ImproperlyConfigured
from django.db.backends.base.base import NO_DB_ALIAS
from django.db.backends.postgresql import base
from psycopg_pool import ConnectionPool
from psycopg_pool.base import AttemptWithBackoff

#: Longest wait between two attempts to refill a pool slot while the database is down.
RECONNECT_MAX_DELAY = 1.0


class _CappedAttempt(AttemptWithBackoff):
    def update_delay(self, now: float) -> None:
        super().update_delay(now)
        self.delay = min(self.delay, RECONNECT_MAX_DELAY)


class CortexConnectionPool(ConnectionPool):
    """psycopg_pool's pool whose reconnection back-off is capped (see module docstring)."""

    def _add_connection(self, attempt: Any, growing: bool = False) -> None:
        if attempt is None:
            attempt = _CappedAttempt(timeout=self.reconnect_timeout)
        super()._add_connection(attempt, growing=growing)


class DatabaseWrapper(base.DatabaseWrapper):
    @property
    def pool(self) -> ConnectionPool | None:
        """Django's pool property, building a CortexConnectionPool."""
        pool_options = self.settings_dict["OPTIONS"].get("pool")
        if self.alias == NO_DB_ALIAS or not pool_options:
            return None
        # Django's private class-level registry of pools, one per alias (see __init__).
        pools: dict[str, ConnectionPool] = self._connection_pools  # type: ignore[attr-defined]
        if self.alias not in pools:
            if self.settings_dict.get("CONN_MAX_AGE", 0) != 0:
                raise ImproperlyConfigured("Pooling doesn't support persistent connections.")
            if pool_options is True:
                pool_options = {}
            connect_kwargs = self.get_connection_params()
            connect_kwargs["autocommit"] = True
            checks = self.settings_dict["CONN_HEALTH_CHECKS"]
            pool = CortexConnectionPool(
                kwargs=connect_kwargs,
                open=False,
                configure=self._configure_connection,  # type: ignore[attr-defined]
                check=ConnectionPool.check_connection if checks else None,
                **pool_options,
            )
            pools.setdefault(self.alias, pool)
        return pools[self.alias]
