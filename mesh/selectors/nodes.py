"""Reads about one node: whether it takes a skill, its invite and agent, its policy's verdict."""

from __future__ import annotations

from typing import Any

from cortex.errors import NotFound, ValidationFailed
from mesh.agent.skill_names import SKILLS, Skill
from mesh.models import Node

#: Why `node_skill_refusal` refuses, as stable codes (the services' errors and the tools'
#: refusals carry the same ones).
NODE_INACTIVE = "node_inactive"
SKILL_DISABLED = "skill_disabled"
CAPABILITY_MISSING = "capability_missing"


def node_skill_refusal(*, node: Node, skill: str) -> str | None:
    """Why `node` cannot take `skill` now, or None when it can: the one check of the REST
    dispatch, the chat tools and the tool list.

    The node must be active and have the skill switched on by an admin. Once the node has
    reported its capabilities (its Hello), it takes the skill only if it reported `true` for
    it: fail closed, so a capability it does not mention (an agent that does not know the
    skill) or reports as anything but `true` refuses. Before its first Hello a node has
    reported nothing; its tasks queue, and the agent checks its own capability before running
    one (`skill_enabled`), rejecting what it cannot do. The browser is the exception: it needs
    software most machines lack, so only a node that reported one gets browser work.
    """
    if not node.is_active:
        return NODE_INACTIVE
    if skill not in SKILLS or (node.skill_config or {}).get(skill) is not True:
        return SKILL_DISABLED
    if not _reported(node.capabilities or {}, skill):
        return CAPABILITY_MISSING
    return None


def _reported(caps: dict[str, Any], skill: str) -> bool:
    """Whether the node's Hello allows `skill` (see `node_skill_refusal`)."""
    if skill == Skill.BROWSER or caps:
        return caps.get(skill) is True
    return True


def node_skills_available(*, node: Any) -> list[str]:
    """The skills the node takes if it is active (`node_skill_refusal` without the switch):
    what the node list shows. `node` may be a row of `NODE_USER_FIELDS`."""
    config, caps = node.skill_config or {}, node.capabilities or {}
    return [s for s in SKILLS if config.get(s) is True and _reported(caps, s)]


def group_for_grant(*, group_id: Any) -> Any:
    """The auth group an admin grants or revokes access for; NotFound if it does not exist."""
    from django.contrib.auth.models import Group

    group = Group.objects.filter(pk=group_id).first()
    if group is None:
        raise NotFound("No such group.", code="group_not_found")
    return group


def invite_state(*, node: Node) -> dict[str, Any]:
    """State of the node's latest invite (uses prefetched invites when present)."""
    from django.utils import timezone

    invites = list(node.invites.all())
    if not invites:
        return {"state": "none", "expires_at": None, "used_at": None}
    latest = max(invites, key=lambda i: (i.created_at, i.pk))
    if latest.used_at is not None:
        state = "used"
    elif latest.revoked_at is not None:
        state = "revoked"
    elif latest.expires_at <= timezone.now():
        state = "expired"
    else:
        state = "pending"
    return {"state": state, "expires_at": latest.expires_at, "used_at": latest.used_at}


def node_find(*, node_id: str) -> Node | None:
    """A node by its id with no grant scoping: for operators' management commands only."""
    return Node.objects.filter(node_id=node_id).first()


def node_agent_info(*, node: Node) -> dict[str, str]:
    """The agent's version, Python and OS, as its last Hello said (empty before the first)."""
    return {"version": node.version, "python": node.agent_python, "os": node.agent_os}


def policy_check(
    *, node: Node, command: str, policy: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Judge `command` with the checker the hub and the node use, against the node's policy or
    a draft `policy` (the editor's "check a command" box). A draft that does not validate is a
    400 on `policy`, as saving it would be."""
    from mesh.agent.sandbox import Policy, check_command

    source = node.sandbox_policy if policy is None else policy
    try:
        parsed = Policy.from_dict(source or {})
    except ValueError as exc:
        raise ValidationFailed(fields={"policy": [str(exc)]}) from exc
    verdict = check_command(parsed, command)
    return {
        "allowed": bool(verdict.allowed),
        "sensitive": bool(verdict.sensitive),
        "reason": verdict.reason,
        "offending": verdict.offending or "",
        "commands": list(verdict.commands),
    }
