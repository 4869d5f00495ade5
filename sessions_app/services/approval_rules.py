"""Standing approval rules: made from an "always allow" answer, consulted before asking, revoked.

A rule is an allow-list in the sandbox policy's own syntax, checked with the same checker the
hub and the node use (`mesh.agent.sandbox.check_command`, strict mode): every command the line
would start, wrappers and substitutions looked through, must match one of the rule's patterns.
On top of that the node's own policy must allow the line and must not mark it sensitive, so a
rule never lets through what the node denies, and sensitive commands always ask a person.
"""

from __future__ import annotations

import shlex
from typing import TYPE_CHECKING, Any

from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from accounts.context import CHAT_CONTEXT, DEFAULT_CONTEXT, AuditContext
from accounts.models import User
from accounts.services import audit_record
from cortex import errors
from sessions_app.models import ApprovalRule, ToolApproval

if TYPE_CHECKING:
    from mesh.agent.sandbox import Policy
    from mesh.models import Node

MAX_PATTERNS = 8
MAX_PATTERN_WORDS = 6
_GLOB = set("*?[]")


class RuleNotPossible(errors.ValidationFailed):
    code = "rule_not_possible"
    default_message = "This call cannot be allowed by a standing rule."


def _policy_of(node: Node) -> Policy:
    from mesh.agent.sandbox import Policy

    return Policy.from_dict(node.sandbox_policy or {})


def command_covered(*, patterns: list[str], node: Node, command: str) -> bool:
    """Whether `patterns` allow every command of `command` on `node`, which must itself allow
    it and not flag it sensitive. Anything unreadable or unparsable is not covered."""
    from mesh.agent.sandbox import Policy, check_command

    if not patterns or not isinstance(command, str):
        return False
    try:
        node_policy = _policy_of(node)
        verdict = check_command(node_policy, command)
        if not verdict.allowed or verdict.sensitive:
            return False
        rule_policy = Policy.from_dict(
            {
                "mode": "strict",
                "allowed_commands": list(patterns),
                "denied_commands": list(node_policy.denied_commands),
                "sensitive_commands": list(node_policy.sensitive_commands),
            }
        )
        verdict = check_command(rule_policy, command)
    except ValueError:
        return False
    return bool(verdict.allowed and not verdict.sensitive)


def clean_patterns(patterns: list[str]) -> list[str]:
    """Normalise person-given patterns; refuse entries that would match (nearly) anything."""
    cleaned: list[str] = []
    problems: list[str] = []
    for raw in patterns:
        entry = " ".join(str(raw).split())
        words = entry.split()
        if not words:
            continue
        name = words[0].rsplit("/", 1)[-1]
        if entry.startswith("@"):
            problems.append(f"{entry!r}: rules can only be used to deny or flag.")
        elif not any(ch.isalnum() for ch in name) or set(name) <= _GLOB | {"-", "."}:
            problems.append(f"{entry!r}: the command name must be spelled out.")
        elif len(words) > MAX_PATTERN_WORDS or len(entry) > 200:
            problems.append(f"{entry!r}: too long.")
        elif entry not in cleaned:
            cleaned.append(entry)
    if not cleaned and not problems:
        problems.append("Give at least one command pattern.")
    if len(cleaned) > MAX_PATTERNS:
        problems.append(f"At most {MAX_PATTERNS} patterns.")
    if problems:
        raise RuleNotPossible("Some patterns cannot be used.", fields={"patterns": problems})
    return cleaned


def suggested_patterns(command: str) -> list[str]:
    """The command's first words as a rule would store them (`git status`, `ls`).

    One simple command: its name and first argument when that is a plain word; a pipeline or
    list: each command's name. Empty when the line cannot be parsed.
    """
    from mesh.agent.sandbox import SandboxParseError, parse_commands

    try:
        names = parse_commands(command)
    except (SandboxParseError, RecursionError, ValueError):
        return []
    unique = list(dict.fromkeys(n for n in names if n))
    if len(unique) != 1:
        return unique
    try:
        words = shlex.split(command)
    except ValueError:
        return unique
    plain = (
        len(words) >= 2
        and words[0] == unique[0]
        and not words[1].startswith("-")
        and words[1].replace("-", "").replace("_", "").replace(".", "").isalnum()
    )
    return [f"{unique[0]} {words[1]}"] if plain else unique


def approval_rule_suggestion(*, approval: ToolApproval) -> list[str] | None:
    """What "always allow" would store for this approval; None when no rule may cover it."""
    if approval.reason == "sensitive_command" or not approval.node_id:
        return None
    command = approval.arguments.get("command") if isinstance(approval.arguments, dict) else None
    if isinstance(command, str):
        return suggested_patterns(command) or None
    action = approval.arguments.get("action") if isinstance(approval.arguments, dict) else None
    return [action] if isinstance(action, str) and action else None


def approval_rule_create(
    *,
    actor: User,
    approval: ToolApproval,
    remember: str,
    patterns: list[str] | None = None,
    audit_context: AuditContext = DEFAULT_CONTEXT,
) -> ApprovalRule:
    """A rule from an approval the actor is answering; it must cover that very call.

    Raises RuleNotPossible for sensitive or denied commands, calls without a node, and patterns
    that do not cover the call (the caller runs this before deciding, so nothing changes).
    """
    from mesh.models import Node

    if approval.reason == "sensitive_command":
        raise RuleNotPossible("A sensitive command needs a fresh approval every time.")
    node = Node.objects.filter(node_id=approval.node_id).first() if approval.node_id else None
    if node is None:
        raise RuleNotPossible("Only calls on a node can be allowed by a rule.")
    arguments = approval.arguments if isinstance(approval.arguments, dict) else {}
    rule = ApprovalRule(
        owner=actor,
        session=approval.session if remember == "session" else None,
        node=node,
        tool_name=approval.tool_name,
        created_from=approval,
    )
    command = arguments.get("command")
    if isinstance(command, str):
        rule.command_patterns = clean_patterns(
            patterns if patterns else suggested_patterns(command)
        )
        if not command_covered(patterns=rule.command_patterns, node=node, command=command):
            raise RuleNotPossible(
                "These patterns do not cover this command, or the node's policy denies it or "
                "marks it sensitive.",
                fields={"patterns": ["Must cover the command being approved."]},
            )
    elif isinstance(arguments.get("action"), str) and arguments["action"]:
        rule.action = arguments["action"]
    else:
        raise RuleNotPossible("This tool call has no command or action a rule could name.")
    rule.full_clean(exclude=["owner", "session", "node", "created_from"])
    rule.save()
    audit_record(
        actor=actor,
        action="sessions.approval_rule.created",
        target_type="approval_rule",
        target_id=rule.pk,
        audit_context=audit_context,
        details=_details(rule),
    )
    return rule


def _details(rule: ApprovalRule) -> dict[str, Any]:
    return {
        "rule_id": rule.pk,
        "owner_id": rule.owner_id,
        "session_id": rule.session_id,
        "node_id": rule.node.node_id,
        "tool": rule.tool_name,
        "command_patterns": list(rule.command_patterns),
        "action": rule.action,
    }


def _rule_covers(rule: ApprovalRule, node: Node, arguments: dict[str, Any]) -> bool:
    command = arguments.get("command")
    if rule.command_patterns:
        return isinstance(command, str) and command_covered(
            patterns=list(rule.command_patterns), node=node, command=command
        )
    return command is None and bool(rule.action) and arguments.get("action") == rule.action


def approval_rule_match(
    *,
    user: User,
    session_id: int,
    tool_name: str,
    nodes: list[Node],
    arguments: dict[str, Any],
) -> list[ApprovalRule] | None:
    """The rules (one per target node) that allow this call without asking, or None."""
    if not nodes:
        return None
    rules = list(
        ApprovalRule.objects.filter(owner=user, tool_name=tool_name, node__in=nodes)
        .filter(Q(session_id=session_id) | Q(session__isnull=True))
        .select_related("node")
        .order_by("id")
    )
    chosen: list[ApprovalRule] = []
    for node in nodes:
        found = next(
            (r for r in rules if r.node_id == node.pk and _rule_covers(r, node, arguments)), None
        )
        if found is None:
            return None
        chosen.append(found)
    return chosen


def approval_rule_used(
    *, rules: list[ApprovalRule], session_id: int, message_id: int, call: dict[str, Any]
) -> None:
    """Count and audit each use of a rule (who asked is the rule's owner, source `rule`)."""
    now = timezone.now()
    with transaction.atomic():
        for rule in rules:
            ApprovalRule.objects.filter(pk=rule.pk).update(
                use_count=F("use_count") + 1, last_used_at=now
            )
            audit_record(
                actor=rule.owner,
                action="sessions.approval_rule.used",
                target_type="approval_rule",
                target_id=rule.pk,
                audit_context=CHAT_CONTEXT,
                details={
                    **_details(rule),
                    "chat_session_id": session_id,
                    "message_id": message_id,
                    "tool_call_id": call.get("call_id", ""),
                    "arguments": call.get("arguments") or {},
                },
            )


def approval_rule_delete(
    *, actor: User, rule: ApprovalRule, audit_context: AuditContext = DEFAULT_CONTEXT
) -> None:
    """Revoke a rule: the next matching call asks a person again."""
    with transaction.atomic():
        audit_record(
            actor=actor,
            action="sessions.approval_rule.revoked",
            target_type="approval_rule",
            target_id=rule.pk,
            audit_context=audit_context,
            details=_details(rule),
        )
        rule.delete()
