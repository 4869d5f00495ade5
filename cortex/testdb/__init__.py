"""Database backends for the test suite only: Django's own, with a flush that the audit
triggers let through.

Transactional tests empty every table between tests (`flush`). The audit table refuses
DELETE and TRUNCATE at the database level (accounts/audit_guard.py), so these backends lift the
triggers inside the flush and restore them after it. Only `cortex.test_settings` names them;
the hub itself always runs on Django's stock backends, where nothing lifts the triggers.
"""

from __future__ import annotations

from accounts import audit_guard


def wrap_flush(vendor: str, sql: list[str]) -> list[str]:
    """`sql` with the audit triggers dropped before and recreated after, if it flushes them."""
    if not any(audit_guard.TABLE in statement for statement in sql):
        return sql
    return [*audit_guard.drop_sql(vendor), *sql, *audit_guard.create_sql(vendor)]
