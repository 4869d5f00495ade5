"""Groups and memberships (Django's auth groups); every change is audited."""

from __future__ import annotations

from django.contrib.auth.models import Group
from django.db import transaction

from accounts.context import DEFAULT_CONTEXT, AuditContext
from accounts.errors import GroupNameTaken
from accounts.models import User
from accounts.services.audit import audit_record


def _check_name_free(name: str, *, exclude_pk: int | None = None) -> None:
    taken = Group.objects.filter(name__iexact=name)
    if exclude_pk is not None:
        taken = taken.exclude(pk=exclude_pk)
    if taken.exists():
        raise GroupNameTaken(fields={"name": ["A group with this name exists already."]})


@transaction.atomic
def group_create(*, actor: User, name: str, audit_context: AuditContext = DEFAULT_CONTEXT) -> Group:
    """Create a group; names are unique case-insensitively."""
    _check_name_free(name)
    group = Group(name=name)
    group.full_clean()
    group.save()
    audit_record(
        actor=actor,
        action="group.created",
        target_type="group",
        target_id=group.pk,
        audit_context=audit_context,
        details={"name": name},
    )
    return group


@transaction.atomic
def group_update(
    *, actor: User, group: Group, name: str, audit_context: AuditContext = DEFAULT_CONTEXT
) -> Group:
    """Rename a group."""
    if name == group.name:
        return group
    _check_name_free(name, exclude_pk=group.pk)
    before = group.name
    group.name = name
    group.full_clean()
    group.save(update_fields=["name"])
    audit_record(
        actor=actor,
        action="group.updated",
        target_type="group",
        target_id=group.pk,
        audit_context=audit_context,
        details={"before": {"name": before}, "after": {"name": name}},
    )
    return group


@transaction.atomic
def group_delete(
    *, actor: User, group: Group, audit_context: AuditContext = DEFAULT_CONTEXT
) -> None:
    """Delete a group; memberships and grants held by other apps go with it (or it is protected)."""
    group_id, name = group.pk, group.name
    group.delete()
    audit_record(
        actor=actor,
        action="group.deleted",
        target_type="group",
        target_id=group_id,
        audit_context=audit_context,
        details={"name": name},
    )


@transaction.atomic
def group_member_add(
    *, actor: User, group: Group, user: User, audit_context: AuditContext = DEFAULT_CONTEXT
) -> bool:
    """Add `user` to `group`; returns False (and records nothing) if already a member."""
    if group.user_set.filter(pk=user.pk).exists():
        return False
    group.user_set.add(user)
    audit_record(
        actor=actor,
        action="group.member_added",
        target_type="group",
        target_id=group.pk,
        audit_context=audit_context,
        details={"group": group.name, "user": user.pk, "email": user.email},
    )
    return True


@transaction.atomic
def group_member_remove(
    *, actor: User, group: Group, user: User, audit_context: AuditContext = DEFAULT_CONTEXT
) -> bool:
    """Remove `user` from `group`; returns False (and records nothing) if not a member."""
    if not group.user_set.filter(pk=user.pk).exists():
        return False
    group.user_set.remove(user)
    audit_record(
        actor=actor,
        action="group.member_removed",
        target_type="group",
        target_id=group.pk,
        audit_context=audit_context,
        details={"group": group.name, "user": user.pk, "email": user.email},
    )
    return True
