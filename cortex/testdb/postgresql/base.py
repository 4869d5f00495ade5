"""Django's PostgreSQL backend whose test flush lifts the audit triggers (see cortex.testdb)."""

from __future__ import annotations

from typing import Any

from django.db.backends.postgresql import operations

from cortex.patches.postgresql import base
from cortex.testdb import wrap_flush


class DatabaseOperations(operations.DatabaseOperations):
    def sql_flush(self, style: Any, tables: Any, **kwargs: Any) -> list[str]:
        return wrap_flush("postgresql", super().sql_flush(style, tables, **kwargs))


class DatabaseWrapper(base.DatabaseWrapper):
    ops_class = DatabaseOperations
