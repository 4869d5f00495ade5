"""The audit table refuses UPDATE and DELETE in the database (see accounts/audit_guard.py)."""

from django.db import migrations

from accounts import audit_guard


def install(apps, schema_editor):
    for statement in audit_guard.create_sql(schema_editor.connection.vendor):
        schema_editor.execute(statement, params=None)


def remove(apps, schema_editor):
    for statement in audit_guard.drop_sql(schema_editor.connection.vendor):
        schema_editor.execute(statement, params=None)


class Migration(migrations.Migration):

    dependencies = [
        ("accounts", "0002_apitoken_wsticket_appconfig"),
    ]

    operations = [migrations.RunPython(install, remove)]
