"""Group services called directly: names unique in any case, memberships idempotent, all audited."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group

from accounts.context import AuditContext
from accounts.errors import GroupNameTaken
from accounts.models import AuditEvent
from accounts.services import (
    group_create,
    group_delete,
    group_member_add,
    group_member_remove,
    group_update,
)

pytestmark = pytest.mark.django_db

ADMIN_CONTEXT = AuditContext(transport="admin", client_ip="10.0.0.9")


def _actions() -> list[str]:
    return list(AuditEvent.objects.order_by("id").values_list("action", flat=True))


def test_group_create_audits_and_refuses_a_name_taken_in_another_case(staff_user):
    group = group_create(actor=staff_user, name="Ops", audit_context=ADMIN_CONTEXT)
    assert Group.objects.get(pk=group.pk).name == "Ops"
    event = AuditEvent.objects.get(action="group.created")
    assert event.target_id == str(group.pk)
    assert event.details == {"name": "Ops"}
    assert event.source == "admin" and event.client_ip == "10.0.0.9"
    with pytest.raises(GroupNameTaken) as exc:
        group_create(actor=staff_user, name="OPS")
    assert exc.value.code == "group_name_taken" and "name" in exc.value.fields
    assert Group.objects.count() == 1 and _actions() == ["group.created"]


def test_group_update_renames_skips_no_op_and_refuses_taken_name(staff_user):
    ops = group_create(actor=staff_user, name="ops")
    group_create(actor=staff_user, name="dev")
    assert group_update(actor=staff_user, group=ops, name="ops") is ops
    assert _actions() == ["group.created", "group.created"]
    group_update(actor=staff_user, group=ops, name="Operations")
    ops.refresh_from_db()
    assert ops.name == "Operations"
    event = AuditEvent.objects.get(action="group.updated")
    assert event.details == {"before": {"name": "ops"}, "after": {"name": "Operations"}}
    with pytest.raises(GroupNameTaken):
        group_update(actor=staff_user, group=ops, name="DEV")
    ops.refresh_from_db()
    assert ops.name == "Operations"
    # Only the case of its own name changes: not a clash with itself.
    group_update(actor=staff_user, group=ops, name="OPERATIONS")
    assert Group.objects.get(pk=ops.pk).name == "OPERATIONS"


def test_group_delete_removes_memberships_and_records_the_name(staff_user, user):
    group = group_create(actor=staff_user, name="ops")
    group_member_add(actor=staff_user, group=group, user=user)
    group_pk = group.pk
    group_delete(actor=staff_user, group=group)
    assert not Group.objects.filter(pk=group_pk).exists()
    assert not user.groups.exists()
    event = AuditEvent.objects.get(action="group.deleted")
    assert event.details == {"name": "ops"}


def test_group_members_add_and_remove_are_idempotent_and_audited_once(staff_user, user):
    group = group_create(actor=staff_user, name="ops")
    assert group_member_add(actor=staff_user, group=group, user=user) is True
    assert group_member_add(actor=staff_user, group=group, user=user) is False
    assert list(user.groups.values_list("name", flat=True)) == ["ops"]
    added = AuditEvent.objects.get(action="group.member_added")
    assert added.details == {"group": "ops", "user": user.pk, "email": user.email}
    assert group_member_remove(actor=staff_user, group=group, user=user) is True
    assert group_member_remove(actor=staff_user, group=group, user=user) is False
    assert not user.groups.exists()
    assert _actions() == ["group.created", "group.member_added", "group.member_removed"]
