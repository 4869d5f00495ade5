"""Hand-written statements for the task journal's hot path (claim, start, finish).

A dispatched task passes three journal steps on its way to a result. Through the ORM each
step cost a SELECT of the whole row plus an UPDATE, about a millisecond of query building
on every task; here each is one statement (`UPDATE … RETURNING`, on SQLite ≥ 3.35 and
PostgreSQL alike), with values prepared by the model's own fields so both backends store
exactly what the ORM would.
"""

from __future__ import annotations

import functools
from typing import Any

from django.db import connection, models


def table(model: type[models.Model]) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def to_db(model: type[models.Model], field: str, value: Any) -> Any:
    """`value` as the model's field would write it (UUIDs, datetimes, JSON, SQL NULL)."""
    return model._meta.get_field(field).get_db_prep_save(value, connection)


def from_db(model: type[models.Model], field: str, value: Any) -> Any:
    """A column read by hand, converted as the ORM would convert it."""
    column, converters = _converters(model, field, connection.vendor)
    for convert in converters:
        value = convert(value, column, connection)
    return value


@functools.cache
def _converters(model: type[models.Model], field: str, vendor: str) -> tuple[Any, list[Any]]:
    column = model._meta.get_field(field).get_col(model._meta.db_table)
    return column, connection.ops.get_db_converters(column) + column.get_db_converters(connection)


def rows(sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def placeholders(count: int) -> str:
    """`%s, %s, …` for an IN list of `count` values (bound, never interpolated)."""
    return ", ".join(["%s"] * count)


def column(model: type[models.Model], field: str) -> str:
    return connection.ops.quote_name(model._meta.get_field(field).column)
