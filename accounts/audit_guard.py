"""Database triggers that keep the audit table append-only, whatever code runs against it.

`AuditEvent` refuses `save()` on an existing row and queryset `update()`/`delete()`, but raw SQL,
a migration or a bug could still rewrite history. These triggers refuse `UPDATE` and `DELETE`
(and `TRUNCATE` on PostgreSQL) in the database itself. The one change allowed is the one Django
makes when a user is deleted: `actor_id` set to NULL with every other column unchanged
(`actor_label` keeps who it was).
"""

from __future__ import annotations

TABLE = "accounts_auditevent"
MESSAGE = "audit events are append-only"

# Every column but actor_id: an update may touch none of them.
_KEPT = (
    "id",
    "created_at",
    "actor_label",
    "action",
    "target_type",
    "target_id",
    "source",
    "client_ip",
    "user_agent",
    "details",
)
_SQLITE_UNCHANGED = " AND ".join(f'NEW."{c}" IS OLD."{c}"' for c in _KEPT)

SQLITE_CREATE = [
    f"""CREATE TRIGGER IF NOT EXISTS {TABLE}_no_update BEFORE UPDATE ON {TABLE}
    WHEN NOT (OLD.actor_id IS NOT NULL AND NEW.actor_id IS NULL AND {_SQLITE_UNCHANGED})
    BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END""",
    f"""CREATE TRIGGER IF NOT EXISTS {TABLE}_no_delete BEFORE DELETE ON {TABLE}
    BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END""",
    # `INSERT OR REPLACE` deletes the old row without firing DELETE triggers: refuse any
    # insert that names an id already taken, before conflict resolution runs.
    f"""CREATE TRIGGER IF NOT EXISTS {TABLE}_no_replace BEFORE INSERT ON {TABLE}
    WHEN NEW.id IS NOT NULL AND EXISTS (SELECT 1 FROM {TABLE} WHERE id = NEW.id)
    BEGIN SELECT RAISE(ABORT, '{MESSAGE}'); END""",  # noqa: S608  # constants, no input
]
SQLITE_DROP = [
    f"DROP TRIGGER IF EXISTS {TABLE}_no_update",
    f"DROP TRIGGER IF EXISTS {TABLE}_no_delete",
    f"DROP TRIGGER IF EXISTS {TABLE}_no_replace",
]

# restrict_violation (23001) surfaces as IntegrityError, like SQLite's RAISE(ABORT).
POSTGRES_CREATE = [
    f"""CREATE OR REPLACE FUNCTION {TABLE}_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'UPDATE' THEN
    IF OLD.actor_id IS NOT NULL AND NEW.actor_id IS NULL
       AND (to_jsonb(NEW) - 'actor_id') = (to_jsonb(OLD) - 'actor_id') THEN
      RETURN NEW;
    END IF;
  END IF;
  RAISE EXCEPTION '{MESSAGE}' USING ERRCODE = 'restrict_violation';
END
$$""",
    f"""CREATE TRIGGER {TABLE}_append_only BEFORE UPDATE OR DELETE ON {TABLE}
    FOR EACH ROW EXECUTE FUNCTION {TABLE}_append_only()""",
    f"""CREATE TRIGGER {TABLE}_no_truncate BEFORE TRUNCATE ON {TABLE}
    FOR EACH STATEMENT EXECUTE FUNCTION {TABLE}_append_only()""",
]
POSTGRES_DROP = [
    f"DROP TRIGGER IF EXISTS {TABLE}_no_truncate ON {TABLE}",
    f"DROP TRIGGER IF EXISTS {TABLE}_append_only ON {TABLE}",
    f"DROP FUNCTION IF EXISTS {TABLE}_append_only()",
]


def create_sql(vendor: str) -> list[str]:
    """The statements that install the triggers on this database vendor."""
    if vendor == "sqlite":
        return list(SQLITE_CREATE)
    if vendor == "postgresql":
        return list(POSTGRES_CREATE)
    # Fail closed: the hub supports these two; elsewhere the guarantee would silently vanish.
    raise RuntimeError(f"No append-only audit triggers for database vendor {vendor!r}.")


def drop_sql(vendor: str) -> list[str]:
    """The statements that remove the triggers (migration rollback only)."""
    if vendor == "sqlite":
        return list(SQLITE_DROP)
    if vendor == "postgresql":
        return list(POSTGRES_DROP)
    raise RuntimeError(f"No append-only audit triggers for database vendor {vendor!r}.")
