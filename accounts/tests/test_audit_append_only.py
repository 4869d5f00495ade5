"""The audit table refuses UPDATE and DELETE in the database, on SQLite and on PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import psycopg
import pytest
from django.db import IntegrityError, connection, transaction

from accounts.models import AuditEvent, User
from accounts.services import audit_record

ROOT = Path(__file__).resolve().parents[2]


def _raw(sql: str, params: list | None = None) -> None:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params or [])


@pytest.mark.django_db
def test_sqlite_refuses_update_and_delete_of_audit_rows(user) -> None:
    assert connection.vendor == "sqlite"
    event = audit_record(actor=user, action="thing.done", target_id=1)
    for sql in (
        "UPDATE accounts_auditevent SET action = 'forged'",
        "UPDATE accounts_auditevent SET actor_id = NULL, action = 'forged'",
        "UPDATE accounts_auditevent SET actor_label = ''",
        "DELETE FROM accounts_auditevent",
        "DELETE FROM accounts_auditevent WHERE action = 'thing.done'",
        # REPLACE deletes the old row without firing DELETE triggers.
        "INSERT OR REPLACE INTO accounts_auditevent (id, created_at, actor_label, action,"
        " target_type, target_id, source, user_agent, details)"
        " SELECT id, created_at, '', 'forged', '', '', 'api', '', '{}' FROM accounts_auditevent",
        "REPLACE INTO accounts_auditevent (id, created_at, actor_label, action, target_type,"
        " target_id, source, user_agent, details)"
        " SELECT id, created_at, '', 'forged', '', '', 'api', '', '{}' FROM accounts_auditevent",
        "INSERT INTO accounts_auditevent (id, created_at, actor_label, action, target_type,"
        " target_id, source, user_agent, details)"
        " SELECT id, created_at, '', 'forged', '', '', 'api', '', '{}' FROM accounts_auditevent"
        " WHERE true ON CONFLICT (id) DO UPDATE SET action = 'forged'",
    ):
        with pytest.raises(IntegrityError, match="append-only"):
            _raw(sql)
    event.refresh_from_db()
    assert (event.action, event.actor_id, event.actor_label) == ("thing.done", user.pk, user.email)


@pytest.mark.django_db
def test_deleting_a_user_only_detaches_their_audit_rows(user) -> None:
    """Django's SET_NULL is the one update the triggers allow; the label keeps who it was."""
    event = audit_record(actor=user, action="thing.done", target_id=1)
    User.objects.filter(pk=user.pk).delete()
    event.refresh_from_db()
    assert (event.action, event.actor_id, event.actor_label) == ("thing.done", None, user.email)


@pytest.mark.django_db(transaction=True)
def test_transactional_tests_still_flush(user) -> None:
    """A transactional test leaves audit rows behind; the test flush must still empty the DB."""
    audit_record(actor=user, action="thing.done")
    assert AuditEvent.objects.count() == 1
    with pytest.raises(IntegrityError):
        _raw("DELETE FROM accounts_auditevent")


@pytest.mark.postgres
def test_postgres_refuses_update_delete_and_truncate(postgres_url: str) -> None:
    db_name = f"cortex_audit_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(f"{postgres_url}/postgres", autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{db_name}"')
    try:
        env = {k: v for k, v in os.environ.items() if not k.startswith("DATABASE_URL")}
        # The production settings and Django's stock backend: no test flush hatch.
        env.update(
            DJANGO_SETTINGS_MODULE="cortex.settings", DATABASE_URL=f"{postgres_url}/{db_name}"
        )
        done = subprocess.run(
            [sys.executable, "manage.py", "migrate", "--noinput", "-v", "0"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        with psycopg.connect(f"{postgres_url}/{db_name}", autocommit=True) as conn:
            user_id = conn.execute(
                "INSERT INTO accounts_user (password, is_superuser, email, display_name, is_staff,"
                " is_active, date_joined, updated_at) VALUES ('', false, 'a@example.com', '',"
                " false, true, now(), now()) RETURNING id"
            ).fetchone()[0]
            conn.execute(
                "INSERT INTO accounts_auditevent (created_at, actor_id, actor_label, action,"
                " target_type, target_id, source, user_agent, details) VALUES (now(), %s,"
                " 'a@example.com', 'thing.done', '', '', 'api', '', '{}')",
                [user_id],
            )
            for sql in (
                "UPDATE accounts_auditevent SET action = 'forged'",
                "UPDATE accounts_auditevent SET actor_id = NULL, action = 'forged'",
                "INSERT INTO accounts_auditevent (id, created_at, actor_label, action,"
                " target_type, target_id, source, user_agent, details) SELECT id, created_at,"
                " '', 'forged', '', '', 'api', '', '{}' FROM accounts_auditevent"
                " ON CONFLICT (id) DO UPDATE SET action = 'forged'",
                "DELETE FROM accounts_auditevent",
                "TRUNCATE accounts_auditevent CASCADE",
                "TRUNCATE accounts_user CASCADE",
            ):
                with pytest.raises(psycopg.errors.RestrictViolation, match="append-only"):
                    conn.execute(sql)
            # What Django does when a user is deleted: detach, keep the label.
            conn.execute(
                "UPDATE accounts_auditevent SET actor_id = NULL WHERE actor_id = %s", [user_id]
            )
            conn.execute("DELETE FROM accounts_user WHERE id = %s", [user_id])
            rows = conn.execute(
                "SELECT action, actor_id, actor_label FROM accounts_auditevent"
            ).fetchall()
            assert rows == [("thing.done", None, "a@example.com")]
    finally:
        with psycopg.connect(f"{postgres_url}/postgres", autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
