"""Writes on user-made skills, each audited."""

from __future__ import annotations

import posixpath
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from django.contrib.auth.models import Group
from django.db import IntegrityError, transaction

from accounts.context import DEFAULT_CONTEXT, AuditContext
from accounts.selectors import user_is_admin
from accounts.services import audit_record
from cortex.errors import Conflict, ValidationFailed
from cortex.services import model_update
from tools.models import Skill
from tools.skill_files import FEATURES, SKILL_FILE, system_skills

if TYPE_CHECKING:
    from accounts.models import User

MAX_SKILL_FILES = 50
MAX_SKILL_FILE_CHARS = 200_000


class SkillNameTaken(Conflict):
    code = "skill_name_taken"
    default_message = "A skill with this name exists already."


def _check_features(features: Iterable[str]) -> list[str]:
    result = list(dict.fromkeys(features))
    unknown = [f for f in result if f not in FEATURES]
    if unknown:
        raise ValidationFailed(
            fields={"features": [f"Unknown feature(s): {', '.join(unknown)}; use {FEATURES}."]}
        )
    return result or ["chat"]


def _check_files(files: dict[str, Any]) -> dict[str, str]:
    if len(files) > MAX_SKILL_FILES:
        raise ValidationFailed(fields={"files": [f"At most {MAX_SKILL_FILES} files."]})
    clean: dict[str, str] = {}
    for path, text in files.items():
        normalised = posixpath.normpath(str(path))
        top = normalised.split("/", 1)[0]
        if (
            posixpath.isabs(normalised)
            or normalised.startswith("..")
            or top not in ("scripts", "examples")
            or normalised == top
        ):
            raise ValidationFailed(
                fields={"files": [f"'{path}': files live under scripts/ or examples/."]}
            )
        if not isinstance(text, str) or len(text) > MAX_SKILL_FILE_CHARS:
            raise ValidationFailed(
                fields={"files": [f"'{path}': text of at most {MAX_SKILL_FILE_CHARS} chars."]}
            )
        clean[normalised] = text
    return clean


def groups_by_id(group_ids: Iterable[int], *, field: str) -> list[Group]:
    wanted = sorted(set(group_ids))
    groups = list(Group.objects.filter(pk__in=wanted).order_by("pk"))
    if len(groups) != len(wanted):
        raise ValidationFailed(fields={field: ["Unknown group."]})
    return groups


def _check_groups(*, actor: User, group_ids: Iterable[int]) -> list[Group]:
    """Users share only with groups they belong to; admins with any group."""
    chosen = groups_by_id(group_ids, field="shared_with_groups")
    if user_is_admin(actor):
        return chosen
    mine = set(actor.groups.values_list("id", flat=True))
    outside = [g.name for g in chosen if g.pk not in mine]
    if outside:
        raise ValidationFailed(
            fields={"shared_with_groups": ["You can share only with groups you belong to."]}
        )
    return chosen


def _check_name(*, name: str) -> None:
    if name in system_skills() or name == SKILL_FILE:
        raise SkillNameTaken("A system skill has this name.")


def skill_create(
    *,
    actor: User,
    name: str,
    description: str,
    emoji: str = "",
    features: Iterable[str] = (),
    instructions: str = "",
    files: dict[str, Any] | None = None,
    shared_with_groups: Iterable[int] = (),
    is_enabled: bool = True,
    audit_context: AuditContext = DEFAULT_CONTEXT,
) -> Skill:
    """Create a skill owned by `actor`; names are unique per owner and never a system name."""
    _check_name(name=name)
    groups = _check_groups(actor=actor, group_ids=shared_with_groups)
    skill = Skill(
        owner=actor,
        name=name,
        description=" ".join(description.split()),
        emoji=emoji,
        features=_check_features(features),
        instructions=instructions,
        files=_check_files(files or {}),
        is_enabled=is_enabled,
    )
    skill.full_clean(validate_constraints=False)
    try:
        with transaction.atomic():
            skill.save()
            skill.shared_with_groups.set(groups)
            audit_record(
                actor=actor,
                action="skill.created",
                target_type="skill",
                target_id=skill.pk,
                audit_context=audit_context,
                details={"name": name, "shared_with_groups": [g.pk for g in groups]},
            )
    except IntegrityError as exc:
        raise SkillNameTaken() from exc
    return skill


def skill_update(
    *,
    actor: User,
    skill: Skill,
    data: dict[str, Any],
    audit_context: AuditContext = DEFAULT_CONTEXT,
) -> Skill:
    """Change the owner's skill; `data` holds only the fields to change."""
    data = dict(data)
    changed_fields = sorted(data)
    if "name" in data:
        _check_name(name=data["name"])
        taken = Skill.objects.filter(owner_id=skill.owner_id, name=data["name"])
        if taken.exclude(pk=skill.pk).exists():
            raise SkillNameTaken()
    if "description" in data:
        data["description"] = " ".join(str(data["description"]).split())
    if "features" in data:
        data["features"] = _check_features(data["features"])
    if "files" in data:
        data["files"] = _check_files(data["files"] or {})
    groups = (
        _check_groups(actor=actor, group_ids=data.pop("shared_with_groups"))
        if "shared_with_groups" in data
        else None
    )
    fields = ["name", "description", "emoji", "features", "instructions", "files", "is_enabled"]
    try:
        with transaction.atomic():
            skill, changed = model_update(instance=skill, fields=fields, data=data)
            if groups is not None:
                skill.shared_with_groups.set(groups)
            audit_record(
                actor=actor,
                action="skill.updated",
                target_type="skill",
                target_id=skill.pk,
                audit_context=audit_context,
                details={"fields": changed_fields},
            )
    except IntegrityError as exc:
        raise SkillNameTaken() from exc
    return skill


def skill_delete(
    *, actor: User, skill: Skill, audit_context: AuditContext = DEFAULT_CONTEXT
) -> None:
    """Delete the owner's skill."""
    with transaction.atomic():
        audit_record(
            actor=actor,
            action="skill.deleted",
            target_type="skill",
            target_id=skill.pk,
            audit_context=audit_context,
            details={"name": skill.name},
        )
        skill.delete()
