"""Read-side queries of the tools app: which tools and skills a user may see."""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.contrib.auth.models import Group
from django.db.models import Q, QuerySet

from accounts.selectors import user_is_admin
from cortex.errors import NotFound
from tools.base import Tool, ToolContext
from tools.models import Skill, ToolSwitch
from tools.registry import registry
from tools.skill_files import (
    SKILL_FILE,
    SystemSkill,
    render_skill_md,
    system_skill_file,
    system_skills,
)

if TYPE_CHECKING:
    from django.contrib.auth.models import AnonymousUser

    from accounts.models import User
    from mesh.models import Node


# -- tools ---------------------------------------------------------------------------------


def tool_names_switched_off_for_user(*, user: User | AnonymousUser) -> set[str]:
    """Names of tools an admin switched off for everyone or for one of the user's groups."""
    group_ids = list(user.groups.values_list("id", flat=True)) if user.is_authenticated else []
    rows = ToolSwitch.objects.filter(Q(group__isnull=True) | Q(group_id__in=group_ids))
    return set(rows.values_list("tool_name", flat=True))


def _node_supports(node: Node, tool: Tool) -> bool:
    """The check `ToolContext.node_for_tool` makes before a call (`node_skill_refusal`)."""
    from mesh import selectors as mesh_selectors

    if tool.skill is None:
        return bool(node.is_active)
    return mesh_selectors.node_skill_refusal(node=node, skill=tool.skill) is None


def tools_for_user(*, user: User | AnonymousUser) -> list[Tool]:
    """Tools the user may call: not switched off, and (for node tools) some usable node has the
    skill and capability the tool needs."""
    off = tool_names_switched_off_for_user(user=user)
    candidates = [tool for tool in registry.all() if tool.name not in off]
    if not any(tool.skill for tool in candidates):
        return candidates
    from mesh import selectors as mesh_selectors

    nodes = list(mesh_selectors.node_list_for_user(user=user))
    return [
        tool
        for tool in candidates
        if tool.skill is None or any(_node_supports(node, tool) for node in nodes)
    ]


def tools_for_context(*, context: ToolContext) -> list[Tool]:
    """Tools to offer the model in one chat session: node tools only when an attached node
    supports them."""
    off = tool_names_switched_off_for_user(user=context.user)
    candidates = [tool for tool in registry.all() if tool.name not in off]
    if not any(tool.skill for tool in candidates):
        return candidates
    from mesh import selectors as mesh_selectors

    attached = set(context.attached_nodes)
    nodes = [
        node
        for node in mesh_selectors.node_list_for_user(user=context.user)
        if node.node_id in attached
    ]
    return [
        tool
        for tool in candidates
        if tool.skill is None or any(_node_supports(node, tool) for node in nodes)
    ]


def tool_switch_list(*, user: User) -> QuerySet[ToolSwitch]:
    """Every switch, for admins; nothing for anyone else."""
    if not user_is_admin(user):
        return ToolSwitch.objects.none()
    return ToolSwitch.objects.select_related("group", "created_by").order_by("tool_name", "id")


# -- skills --------------------------------------------------------------------------------


@dataclass(frozen=True)
class SkillEntry:
    """A skill as the API and the prompt see it, whether shipped (system) or user-made."""

    key: str
    id: int | None
    name: str
    description: str
    emoji: str
    features: tuple[str, ...]
    instructions: str
    source: str  # "system" or "user"
    owner_id: int | None
    owner_email: str
    is_enabled: bool
    read_only: bool
    files: tuple[str, ...]
    shared_with_groups: tuple[int, ...]


def _system_entry(skill: SystemSkill) -> SkillEntry:
    return SkillEntry(
        key=skill.name,
        id=None,
        name=skill.name,
        description=skill.description,
        emoji=skill.emoji,
        features=skill.features,
        instructions=skill.instructions,
        source="system",
        owner_id=None,
        owner_email="",
        is_enabled=True,
        read_only=True,
        files=tuple(f for f in skill.files if f != SKILL_FILE),
        shared_with_groups=(),
    )


def _user_entry(skill: Skill, *, user: User) -> SkillEntry:
    return SkillEntry(
        key=str(skill.pk),
        id=skill.pk,
        name=skill.name,
        description=skill.description,
        emoji=skill.emoji,
        features=tuple(skill.features or ()),
        instructions=skill.instructions,
        source="user",
        owner_id=skill.owner_id,
        owner_email=skill.owner.email,
        is_enabled=skill.is_enabled,
        read_only=skill.owner_id != user.pk,
        files=tuple(sorted(skill.files or {})),
        shared_with_groups=tuple(g.pk for g in skill.shared_with_groups.all()),
    )


def skill_queryset_for_user(*, user: User) -> QuerySet[Skill]:
    """User-made skills the user may see: their own and those shared with one of their groups."""
    if not user.is_authenticated:
        return Skill.objects.none()
    group_ids = Group.objects.filter(user=user).values("id")
    visible = Skill.objects.filter(Q(owner=user) | Q(shared_with_groups__in=group_ids)).values("id")
    return (
        Skill.objects.filter(id__in=visible)
        .select_related("owner")
        .prefetch_related("shared_with_groups")
        .order_by("name", "id")
    )


def skill_owned_queryset(*, user: User) -> QuerySet[Skill]:
    """Skills the user may change: only their own (others' answer 404)."""
    if not user.is_authenticated:
        return Skill.objects.none()
    return (
        Skill.objects.filter(owner=user)
        .select_related("owner")
        .prefetch_related("shared_with_groups")
        .order_by("name", "id")
    )


def skill_list_for_user(*, user: User, feature: str | None = None) -> list[SkillEntry]:
    """System skills, then the user's own and group-shared skills, each sorted by name."""
    entries = [_system_entry(s) for s in system_skills().values()]
    entries += [_user_entry(s, user=user) for s in skill_queryset_for_user(user=user)]
    if feature:
        entries = [e for e in entries if not e.features or feature in e.features]
    return entries


def skill_get_for_user(*, user: User, key: str) -> SkillEntry:
    """One skill by key: a system skill's name or a user skill's id. Raises NotFound."""
    system = system_skills().get(key)
    if system is not None:
        return _system_entry(system)
    if key.isdigit():
        skill = skill_queryset_for_user(user=user).filter(pk=int(key)).first()
        if skill is not None:
            return _user_entry(skill, user=user)
    raise NotFound("No such skill.")


def skill_resolve_by_name(*, user: User, name: str) -> SkillEntry | None:
    """The skill the model means by `name`: system first, then the user's own, then shared."""
    system = system_skills().get(name)
    if system is not None:
        return _system_entry(system)
    candidates = [s for s in skill_queryset_for_user(user=user).filter(name=name) if s.is_enabled]
    candidates.sort(key=lambda s: (s.owner_id != user.pk, s.pk))
    return _user_entry(candidates[0], user=user) if candidates else None


def skill_read_file(*, user: User, name: str, file_path: str = SKILL_FILE) -> str:
    """A file of a visible skill. Raises NotFound (no skill, no file) or ValueError (outside)."""
    entry = skill_resolve_by_name(user=user, name=name)
    if entry is None:
        raise NotFound(f"No skill named '{name}'.")
    normalised = posixpath.normpath(file_path or SKILL_FILE)
    if posixpath.isabs(normalised) or normalised == ".." or normalised.startswith("../"):
        raise ValueError(f"'{file_path}' is outside the skill folder.")
    if entry.source == "system":
        system = system_skills()[entry.name]
        text = system_skill_file(system, normalised)
        if text is None:
            raise NotFound(f"Skill '{name}' has no file '{file_path}'.")
        return text
    if normalised == SKILL_FILE:
        return render_skill_md(
            name=entry.name,
            description=entry.description,
            emoji=entry.emoji,
            features=entry.features,
            body=entry.instructions,
        )
    if entry.id is None:
        raise NotFound(f"No skill named '{name}'.")
    skill = skill_queryset_for_user(user=user).get(pk=entry.id)
    if normalised not in (skill.files or {}):
        raise NotFound(f"Skill '{name}' has no file '{file_path}'.")
    return str(skill.files[normalised])


def skills_prompt_for_user(*, user: User, feature: str = "chat") -> str:
    """Only names and one-line descriptions, for the system prompt; read_skill loads the rest."""
    lines = []
    seen: set[str] = set()
    for entry in skill_list_for_user(user=user, feature=feature):
        if not entry.is_enabled or entry.name in seen:
            continue
        seen.add(entry.name)
        emoji = f"{entry.emoji} " if entry.emoji else ""
        lines.append(f"- {emoji}{entry.name}: {entry.description.splitlines()[0]}")
    if not lines:
        return ""
    header = "Skills you can load with the read_skill tool when a task needs them:"
    return "\n".join([header, *lines])
