"""Helpers for the mesh's hand-written statements, on its hot paths only.

Where building a query through the ORM costs more than running it (the task journal's claim,
start and finish; a heartbeat flush's 1,000-value IN lists; an output batch; the node list's
page), a statement is written by hand: names come from the models, every value is a bound
parameter prepared by the model's own field, so SQLite and PostgreSQL store exactly what the
ORM would. `UPDATE … RETURNING` needs SQLite ≥ 3.35.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from django.db import connection, models


def table(model: type[models.Model]) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def model_field(model: type[models.Model], name: str) -> models.Field[Any, Any]:
    """The concrete field `name` of `model`; a reverse relation has no column to write."""
    field = model._meta.get_field(name)
    if not isinstance(field, models.Field):
        raise TypeError(f"{model.__name__}.{name} is not a column")
    return field


def to_db(model: type[models.Model], field: str, value: Any) -> Any:
    """`value` as the model's field would write it (UUIDs, datetimes, JSON, SQL NULL)."""
    return model_field(model, field).get_db_prep_save(value, connection)


def from_db(model: type[models.Model], field: str, value: Any) -> Any:
    """A column read by hand, converted as the ORM would convert it."""
    column, converters = _converters(model, field, connection.vendor)
    for convert in converters:
        value = convert(value, column, connection)
    return value


@functools.cache
def _converters(model: type[models.Model], field: str, vendor: str) -> tuple[Any, list[Any]]:
    column = model_field(model, field).get_col(model._meta.db_table)
    return column, connection.ops.get_db_converters(column) + column.get_db_converters(connection)


def rows(sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        fetched: list[tuple[Any, ...]] = cursor.fetchall()
        return fetched


def placeholders(count: int) -> str:
    """`%s, %s, …` for an IN list of `count` values (bound, never interpolated)."""
    return ", ".join(["%s"] * count)


def column(model: type[models.Model], field: str) -> str:
    name = model_field(model, field).column
    if name is None:
        raise TypeError(f"{model.__name__}.{field} has no column")
    return connection.ops.quote_name(name)


def for_update() -> str:
    """` FOR UPDATE` where the database locks selected rows (not SQLite: it locks the file)."""
    return " FOR UPDATE" if connection.features.has_select_for_update else ""


#: Values per statement of `rows_in` (SQLite's bound-parameter limit is far above it).
IN_CHUNK = 500


def rows_in(
    sql: str, values: list[Any], *, before: Sequence[Any] = (), after: str = ""
) -> list[tuple[Any, ...]]:
    """Rows of `{sql} (%s, …){after}` for `values` in chunks of IN_CHUNK, in chunk order;
    `before` are the parameters that come ahead of the IN list."""
    found: list[tuple[Any, ...]] = []
    for start in range(0, len(values), IN_CHUNK):
        chunk = values[start : start + IN_CHUNK]
        found += rows(f"{sql} ({placeholders(len(chunk))}){after}", [*before, *chunk])
    return found
