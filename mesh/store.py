"""Every hand-written SQL statement of the mesh, behind named functions (the fast path, fenced).

Where building a query through the ORM costs more than running it (the task journal's claim,
start and finish; a heartbeat flush's 1,000-value IN lists; an output batch; the node list's
page; the viewers of a heartbeat batch), the statement is written by hand, here and nowhere
else. Names come from the models, every value is a bound parameter prepared by the model's own
field, so SQLite and PostgreSQL store exactly what the ORM would; values read back are
converted as the ORM converts them. `UPDATE … RETURNING` needs SQLite ≥ 3.35.

Each function has a parity test against the ORM form of the same question, run on SQLite and
on PostgreSQL (mesh/tests/test_store_parity.py). Services and selectors call these functions;
they never open a cursor themselves.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.db import connection, models
from django.db.models.expressions import RawSQL

from mesh.models import (
    ACTIVE_STATUSES,
    Node,
    NodeGroupAccess,
    NodeStatsSample,
    Task,
    TaskOutputChunk,
    TaskStatus,
)

# -- helpers ------------------------------------------------------------------------------


def _field(model: type[models.Model], name: str) -> models.Field[Any, Any]:
    """A concrete field of `model` (reverse relations have no column to write by hand)."""
    field = model._meta.get_field(name)
    if not isinstance(field, models.Field):
        raise TypeError(f"{model.__name__}.{name} is not a concrete field")
    return field


def table(model: type[models.Model]) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def column(model: type[models.Model], field: str) -> str:
    return connection.ops.quote_name(str(_field(model, field).column))


def to_db(model: type[models.Model], field: str, value: Any) -> Any:
    """`value` as the model's field would write it (UUIDs, datetimes, JSON, SQL NULL)."""
    return _field(model, field).get_db_prep_save(value, connection)


def from_db(model: type[models.Model], field: str, value: Any) -> Any:
    """A column read by hand, converted as the ORM would convert it."""
    col, converters = _converters(model, field, connection.vendor)
    for convert in converters:
        value = convert(value, col, connection)
    return value


@functools.cache
def _converters(model: type[models.Model], field: str, vendor: str) -> tuple[Any, list[Any]]:
    col = _field(model, field).get_col(model._meta.db_table)
    return col, connection.ops.get_db_converters(col) + col.get_db_converters(connection)


def _rows(sql: str, params: Sequence[Any]) -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return list(cursor.fetchall())


def _execute(sql: str, params: Sequence[Any]) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def _placeholders(count: int) -> str:
    """`%s, %s, …` for an IN list of `count` values (bound, never interpolated)."""
    return ", ".join(["%s"] * count)


def _for_update() -> str:
    """` FOR UPDATE` where the database locks selected rows (not SQLite: it locks the file)."""
    return " FOR UPDATE" if connection.features.has_select_for_update else ""


#: Values per statement of `_rows_in` (SQLite's bound-parameter limit is far above it).
IN_CHUNK = 500


def _rows_in(
    sql: str, values: list[Any], *, before: Sequence[Any] = (), after: str = ""
) -> list[tuple[Any, ...]]:
    """Rows of `{sql} (%s, …){after}` for `values` in chunks of IN_CHUNK, in chunk order;
    `before` are the parameters that come ahead of the IN list."""
    found: list[tuple[Any, ...]] = []
    for start in range(0, len(values), IN_CHUNK):
        chunk = values[start : start + IN_CHUNK]
        found += _rows(f"{sql} ({_placeholders(len(chunk))}){after}", [*before, *chunk])
    return found


def task_key(task_id: uuid.UUID) -> Any:
    """A task id as the database stores it."""
    return to_db(Task, "id", task_id)


# -- the task journal: start, finish, claim -----------------------------------------------

_TASK, _NODE = table(Task), table(Node)
_NODE_PK = f"(SELECT id FROM {_NODE} WHERE node_id = %s)"  # noqa: S608
_START_SQL = (
    f"UPDATE {_TASK} SET status = %s, started_at = %s, updated_at = %s"  # noqa: S608
    f" WHERE id = %s AND status = %s AND node_id = {_NODE_PK} RETURNING kind, created_at"
)
_FINISH_SQL = (
    f"UPDATE {_TASK} SET status = %s, exit_code = %s, error_code = %s,"  # noqa: S608
    " error_message = %s, result = %s, finished_at = %s,"
    " started_at = COALESCE(started_at, %s), updated_at = %s"
    f" WHERE id = %s AND status IN (%s, %s) AND node_id = {_NODE_PK}"
    " RETURNING last_seq, kind, payload, started_at"
)
_SLOTS_SQL = (
    "SELECT n.id, n.is_active, n.connection_id, n.skill_config,"  # noqa: S608
    f" (SELECT COUNT(*) FROM {_TASK} t WHERE t.node_id = n.id AND t.status IN (%s, %s))"
    f" FROM {_NODE} n WHERE n.node_id = %s"
)
# A task past its delivery deadline is never claimed: the same statement that moves it to
# `dispatched` checks `deliver_by`, so a node reconnecting at the deadline cannot get it.
_CLAIM_SQL = (
    f"UPDATE {_TASK} SET status = %s, dispatched_at = %s, updated_at = %s"  # noqa: S608
    f" WHERE id IN (SELECT id FROM {_TASK} WHERE node_id = %s AND status = %s"
    " AND deliver_by > %s ORDER BY created_at LIMIT %s) AND status = %s"
    f" AND EXISTS (SELECT 1 FROM {_NODE} WHERE id = %s AND connection_id = %s)"
    " RETURNING id, kind, payload, timeout, idempotency_key, created_at"
)
_QUEUED_SQL = (
    f"SELECT DISTINCT n.node_id FROM {_TASK} t JOIN {_NODE} n ON n.id = t.node_id"  # noqa: S608
    " WHERE t.status = %s AND n.node_id IN"
)


def task_mark_started(*, key: Any, node_id: str, now: datetime) -> tuple[str, datetime] | None:
    """`dispatched` -> `running` for the node's own task: its (kind, created_at) when the row
    changed, else None."""
    rows = _rows(
        _START_SQL,
        [
            TaskStatus.RUNNING,
            to_db(Task, "started_at", now),
            to_db(Task, "updated_at", now),
            key,
            TaskStatus.DISPATCHED,
            node_id,
        ],
    )
    if not rows:
        return None
    kind, created_at = rows[0]
    return str(kind), from_db(Task, "created_at", created_at)


def task_mark_finished(
    *,
    key: Any,
    node_id: str,
    status: str,
    exit_code: int | None,
    error_code: str,
    error_message: str,
    result: Any,
    now: datetime,
) -> tuple[int, str, Any, datetime] | None:
    """Settle the node's own active task in one statement: (last seq, kind, payload, started
    at), or None when it is queued, ended already, or not this node's."""
    stamp = to_db(Task, "finished_at", now)
    done = _rows(
        _FINISH_SQL,
        [
            status,
            exit_code,
            error_code,
            error_message,
            to_db(Task, "result", result),
            stamp,
            stamp,
            stamp,
            key,
            *ACTIVE_STATUSES,
            node_id,
        ],
    )
    if not done:
        return None
    last_seq, kind, payload, started_at = done[0]
    return (
        last_seq,
        kind,
        from_db(Task, "payload", payload),
        from_db(Task, "started_at", started_at),
    )


@dataclass(frozen=True)
class NodeSlots:
    """What a claim needs of a node: its pk, switch, stream holder, skills and busy count."""

    pk: int
    is_active: bool
    connection_id: str
    skill_config: dict[str, Any]
    busy: int


def node_slots(*, node_id: str) -> NodeSlots | None:
    """The node's claim state (active tasks counted), or None for an unknown node."""
    found = _rows(_SLOTS_SQL, [*ACTIVE_STATUSES, node_id])
    if not found:
        return None
    pk, is_active, connection_id, skill_config, busy = found[0]
    return NodeSlots(
        pk=pk,
        is_active=bool(is_active),
        connection_id=connection_id,
        skill_config=from_db(Node, "skill_config", skill_config),
        busy=int(busy),
    )


def tasks_claim(*, node_pk: int, connection_id: str, slots: int, now: datetime) -> list[Task]:
    """Move up to `slots` queued, undelivered-in-time tasks of the node to `dispatched`, oldest
    first, if `connection_id` still holds its stream; the claimed tasks (unsaved instances of
    the fields a delivery sends), oldest first. One conditional UPDATE: two processes never
    claim the same task."""
    stamp = to_db(Task, "dispatched_at", now)
    won = _rows(
        _CLAIM_SQL,
        [
            TaskStatus.DISPATCHED,
            stamp,
            stamp,
            node_pk,
            TaskStatus.QUEUED,
            stamp,
            slots,
            TaskStatus.QUEUED,
            node_pk,
            connection_id,
        ],
    )
    tasks = [
        Task(
            id=from_db(Task, "id", pk),
            node_id=node_pk,
            kind=kind,
            payload=from_db(Task, "payload", payload),
            timeout=timeout,
            idempotency_key=idempotency_key,
            status=TaskStatus.DISPATCHED,
            created_at=from_db(Task, "created_at", created_at),
        )
        for pk, kind, payload, timeout, idempotency_key, created_at in won
    ]
    tasks.sort(key=lambda task: task.created_at)
    return tasks


def nodes_with_queued_tasks(*, node_ids: list[str]) -> set[str]:
    """Which of these nodes have queued tasks (one query per IN_CHUNK nodes)."""
    rows = _rows_in(_QUEUED_SQL, node_ids, before=[TaskStatus.QUEUED])
    return {node_id for (node_id,) in rows}


# -- output batches ------------------------------------------------------------------------

_CHUNK = table(TaskOutputChunk)
_OUTPUT_TASK_SQL = (
    "SELECT status, last_seq, output_bytes, stored_bytes, dropped_bytes"  # noqa: S608
    f" FROM {_TASK} WHERE id = %s AND node_id = (SELECT id FROM {_NODE}"
    " WHERE node_id = %s)"
)
_COUNTERS = "last_seq = %s, output_bytes = %s, stored_bytes = %s, dropped_bytes = %s"
_COUNTERS_SQL = f"UPDATE {_TASK} SET {_COUNTERS}, updated_at = %s WHERE id = %s"  # noqa: S608
_COUNTERS_START_SQL = (
    f"UPDATE {_TASK} SET {_COUNTERS}, status = %s,"  # noqa: S608
    " started_at = COALESCE(started_at, %s), updated_at = %s WHERE id = %s"
)
# Every chunk stored before offset `head` is the head, so the stored rows in seq order are read
# with only their size. LENGTH(data) is read from the row's header; `offset` and `size` come
# after the blob, and SQLite would read the whole blob to get them.
_STORED_SQL = f"SELECT id, LENGTH(data) FROM {_CHUNK} WHERE task_id = %s ORDER BY seq"  # noqa: S608


def output_task_lock(*, key: Any, node_id: str) -> tuple[str, int, int, int, int] | None:
    """The node's own task's (status, last_seq, output_bytes, stored_bytes, dropped_bytes),
    its row locked for the batch; None when it is not this node's."""
    found = _rows(_OUTPUT_TASK_SQL + _for_update(), [key, node_id])
    if not found:
        return None
    status, last_seq, output_bytes, stored_bytes, dropped_bytes = found[0]
    return status, last_seq, output_bytes, stored_bytes, dropped_bytes


def output_counters_save(
    *, task_id: uuid.UUID, counters: Sequence[int], now: datetime, start: bool
) -> None:
    """Write a batch's (last_seq, output_bytes, stored_bytes, dropped_bytes); with `start`,
    the task is `running` from now on (its started_at kept when set)."""
    stamp = to_db(Task, "updated_at", now)
    key = task_key(task_id)
    if start:
        _execute(_COUNTERS_START_SQL, [*counters, TaskStatus.RUNNING, stamp, stamp, key])
    else:
        _execute(_COUNTERS_SQL, [*counters, stamp, key])


def output_stored_sizes(*, task_id: uuid.UUID) -> list[tuple[int, int]]:
    """(chunk pk, bytes) of the task's stored chunks in seq order, blobs unread."""
    return [(pk, int(size)) for pk, size in _rows(_STORED_SQL, [task_key(task_id)])]


def output_chunks_delete(*, pks: list[int]) -> None:
    """Delete stored chunks by pk (the output cap's evictions of one batch)."""
    if pks:
        _execute(f"DELETE FROM {_CHUNK} WHERE id IN ({_placeholders(len(pks))})", pks)  # noqa: S608


# -- heartbeat flush ------------------------------------------------------------------------

_BEATING_SQL = (
    "SELECT id, node_id, connection_id, status, skill_config"  # noqa: S608  # table name only
    f" FROM {_NODE} WHERE node_id IN"
)


def nodes_beating_lock(*, node_ids: list[str]) -> list[tuple[int, str, str, str, Any]]:
    """(pk, node_id, connection_id, status, raw skill_config) of these nodes, locked in pk
    order. The skill config is left raw (`skill_config_decode`): configs repeat across a
    fleet and the caller decodes each distinct one once."""
    return [
        (pk, node_id, connection_id, status, raw)
        for pk, node_id, connection_id, status, raw in _rows_in(
            _BEATING_SQL, node_ids, after=f" ORDER BY id{_for_update()}"
        )
    ]


def skill_config_decode(raw: Any) -> dict[str, Any]:
    """A raw skill_config column (`nodes_beating_lock`) as the ORM reads it."""
    decoded: dict[str, Any] = from_db(Node, "skill_config", raw)
    return decoded


def heartbeats_write(*, beats: list[tuple[int, str, dict[str, Any]]], now: datetime) -> None:
    """(pk, status, stats) of each beating node written by one `executemany` UPDATE; the node
    is seen now and no longer offline.

    `bulk_update` builds a CASE expression per field and row in Python, which costs more than
    the database work itself; the rows are locked and checked already.
    """
    q = connection.ops.quote_name
    sets = ", ".join(
        [f"{q(name)} = %s" for name in ("stats", "status", "last_seen_at", "updated_at")]
        + [f"{q('offline_reason')} = ''", f"{q('disconnected_at')} = NULL"]
    )
    sql = f"UPDATE {q(Node._meta.db_table)} SET {sets} WHERE {q('id')} = %s"  # noqa: S608
    field = functools.partial(_field, Node)
    stamp = field("last_seen_at").get_db_prep_value(now, connection)
    stats_field = field("stats")
    rows = [
        (stats_field.get_db_prep_value(stats, connection), status, stamp, stamp, pk)
        for pk, status, stats in beats
    ]
    with connection.cursor() as cursor:
        cursor.executemany(sql, rows)


# -- stats history ---------------------------------------------------------------------------

_SAMPLED_SQL = (
    f"SELECT {column(NodeStatsSample, 'node')}"  # noqa: S608  # names from the model only
    f" FROM {table(NodeStatsSample)} WHERE taken_at = %s"
    f" AND {column(NodeStatsSample, 'node')} IN"
)


def stats_sampled_nodes(*, node_pks: list[int], taken_at: datetime) -> set[int]:
    """Which of these nodes have a stats sample in the bucket starting at `taken_at`."""
    stamp = to_db(NodeStatsSample, "taken_at", taken_at)
    return {pk for (pk,) in _rows_in(_SAMPLED_SQL, node_pks, before=[stamp])}


# -- the node rule, as SQL (the ORM form is mesh.selectors.access) ----------------------------


def _grant_tables() -> tuple[str, str, str]:
    """Quoted tables of nodes, grants and group memberships."""
    from accounts.models import User

    return table(Node), table(NodeGroupAccess), table(User.groups.through)


def visible_node_counts(*, user_pk: int) -> tuple[int, int]:
    """(nodes granted to the user's groups, highest node pk).

    Counted on the grants alone. One group grants each node at most once (unique
    constraint), so only a user in several groups pays for COUNT(DISTINCT), which sorts every
    grant; only the chosen CASE branch runs. The highest node pk (one index lookup) bounds
    how many nodes there are, for `visible_node_page_ids`.
    """
    nodes, access, members = _grant_tables()
    grants = (
        f"FROM {access} WHERE group_id IN"  # noqa: S608  # names from the models only
        f" (SELECT group_id FROM {members} WHERE user_id = %s)"
    )
    sql = (
        f"SELECT CASE WHEN (SELECT COUNT(*) FROM {members} WHERE user_id = %s) > 1"  # noqa: S608
        f" THEN (SELECT COUNT(DISTINCT node_id) {grants}) ELSE (SELECT COUNT(*) {grants}) END,"
        f" (SELECT MAX(id) FROM {nodes})"
    )
    ((visible, highest),) = _rows(sql, [user_pk] * 3)
    return int(visible), int(highest or 0)


def visible_node_page_ids(*, user_pk: int, start: int, limit: int, dense: bool) -> RawSQL:
    """Ids of one page of the nodes granted to the user's groups, in `node_id` order, as a
    subquery (`pk__in=`), by the cheaper of two plans that give the same ids.

    `dense` (the page ends within about `visible` entries of the `node_id` index): walk that
    index, keep the granted nodes and stop at the page's end. Otherwise: one id per granted
    node (GROUP BY: a node granted to two of the user's groups joins twice), sorted.
    """
    nodes, access, members = _grant_tables()
    groups = f"(SELECT group_id FROM {members} WHERE user_id = %s)"  # noqa: S608
    if dense:
        sql = (
            f"SELECT n.id FROM {nodes} n WHERE EXISTS (SELECT 1 FROM {access} a"  # noqa: S608
            f" WHERE a.node_id = n.id AND a.group_id IN {groups})"
            " ORDER BY n.node_id LIMIT %s OFFSET %s"
        )
    else:
        sql = (
            f"SELECT MIN(n.id) FROM {nodes} n JOIN {access} a ON a.node_id = n.id"  # noqa: S608
            f" WHERE a.group_id IN {groups} GROUP BY n.node_id"
            " ORDER BY n.node_id LIMIT %s OFFSET %s"
        )
    return RawSQL(sql, [user_pk, limit, start])  # noqa: S611  # values as parameters


def node_granted_viewers(*, node_pks: list[int]) -> list[tuple[int, int]]:
    """(node pk, user id) of every active user with a grant on one of these nodes (admins
    not included: the caller adds `accounts.selectors.admin_user_ids`)."""
    from accounts.models import User

    _, access, members = _grant_tables()
    # By hand: once per heartbeat flush, and the ORM prepares each IN value in Python.
    sql = (
        "SELECT DISTINCT a.node_id, u.id"  # noqa: S608  # names from the models only
        f" FROM {access} a JOIN {members} m ON m.group_id = a.group_id"
        f" JOIN {table(User)} u ON u.id = m.user_id"
        " WHERE u.is_active = %s AND a.node_id IN"
    )
    return [(node_pk, user_id) for node_pk, user_id in _rows_in(sql, node_pks, before=[True])]


# -- secrets' version (output masking) ---------------------------------------------------------


@functools.cache
def _secret_version_sql(alias: str) -> tuple[str, tuple[Any, ...]]:
    """The count and latest change of layers holding secrets, as one statement built by the
    ORM once per database (asked on every output batch; building it cost more than running
    it)."""
    from preferences.models import PreferenceLayer

    inner, params = (
        PreferenceLayer.objects.using(alias)
        .exclude(secrets={})  # the JSON comparison differs by backend: the ORM writes it
        .order_by()
        .values_list("updated_at")
        .query.sql_with_params()
    )
    return f"SELECT COUNT(*), MAX(s.updated_at) FROM ({inner}) s", tuple(params)  # noqa: S608


def secret_layers_version() -> tuple[int, datetime | None]:
    """(count, latest updated_at) of the preference layers that hold secrets."""
    from preferences.models import PreferenceLayer

    sql, params = _secret_version_sql(connection.alias)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        count, latest = cursor.fetchone() or (0, None)
    if latest is not None:
        latest = from_db(PreferenceLayer, "updated_at", latest)
    return int(count), latest
