"""Agents: create, change, delete, pause, resume, rotate the webhook secret.

Rules live here, not in the API: the owner must be allowed to use every node (the mesh
selector decides, the same one chat uses), the provider/model must pass the owner's
preference layers, triggers must respect `CORTEX_AGENT_MIN_INTERVAL_S`, and unattended rules
must name attached nodes, known tools and patterns a standing approval rule accepts.
"""

from __future__ import annotations

import secrets
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

from accounts.context import DEFAULT_CONTEXT, AuditContext
from accounts.models import User
from accounts.services import audit_record
from agents.models import Agent, TriggerKind
from agents.services import timing
from cortex import errors
from cortex.services import model_update


class UnknownNode(errors.ValidationFailed):
    code = "unknown_node"
    default_message = "No such node."


class InvalidUnattendedRule(errors.ValidationFailed):
    code = "invalid_unattended_rule"
    default_message = "An unattended rule is not valid."


UPDATABLE = (
    "name",
    "instructions",
    "prompt",
    "provider",
    "model",
    "skills",
    "catch_up",
    "max_steps",
    "max_runtime_s",
    "max_tokens",
    "approval_timeout_s",
    "rubric",
    "rework_threshold",
    "max_reworks",
)


def _nodes(*, actor: User, node_ids: list[str]) -> list[Any]:
    """The nodes, each one the actor may use (mesh's rule); any other id is UnknownNode."""
    from mesh import selectors as mesh_selectors

    nodes = []
    for node_id in dict.fromkeys(node_ids):
        try:
            nodes.append(mesh_selectors.node_get_for_user(user=actor, node_id=node_id))
        except errors.NotFound:
            raise UnknownNode(
                "No such node.", fields={"node_ids": [f"No such node: {node_id!r}."]}
            ) from None
    return nodes


def _check_llm(*, actor: User, provider: str, model: str) -> None:
    """Within the owner's preferences: the same check a chat session's override passes."""
    from preferences.selectors import resolve

    override = {k: v for k, v in (("provider", provider), ("model", model)) if v}
    if override:
        resolve(user=actor, kind="llm", session_override=override)


def _clean_unattended(rules: list[dict[str, Any]], node_ids: list[str]) -> list[dict[str, Any]]:
    """Each rule names an attached node, a registered tool, and a command pattern or action."""
    from sessions_app.services.approval_rules import RuleNotPossible, clean_patterns
    from tools.registry import registry

    cleaned: list[dict[str, Any]] = []
    for index, rule in enumerate(rules):
        where = f"unattended.allow[{index}]"
        node_id, tool = rule.get("node_id", ""), rule.get("tool", "")
        command, action = rule.get("command") or "", rule.get("action") or ""
        if node_id not in node_ids:
            raise InvalidUnattendedRule(fields={where: ["The node must be one of node_ids."]})
        if registry.get(tool) is None:
            raise InvalidUnattendedRule(fields={where: [f"No tool named {tool!r}."]})
        if bool(command) == bool(action):
            raise InvalidUnattendedRule(fields={where: ["Give a command pattern or an action."]})
        entry: dict[str, Any] = {"node_id": node_id, "tool": tool}
        if command:
            try:
                entry["command"] = clean_patterns([command])[0]
            except RuleNotPossible as exc:
                raise InvalidUnattendedRule(
                    fields={where: (exc.fields or {}).get("patterns", [])}
                ) from exc
        else:
            entry["action"] = action
        cleaned.append(entry)
    return cleaned


def _apply_trigger(agent: Agent, trigger: dict[str, Any]) -> None:
    kind = trigger["kind"]
    agent.trigger_kind = kind
    agent.interval_seconds = None
    agent.cron_expression = ""
    agent.timezone = trigger.get("timezone") or "UTC"
    timing.zone(agent.timezone)
    if kind == TriggerKind.INTERVAL:
        timing.check_interval(int(trigger["seconds"]))
        agent.interval_seconds = int(trigger["seconds"])
    elif kind == TriggerKind.CRON:
        expression = " ".join(str(trigger["expression"]).split())
        timing.check_cron(expression, agent.timezone)
        agent.cron_expression = expression
    agent.next_fire_at = _first_tick(agent)


def _first_tick(agent: Agent) -> Any:
    now = timezone.now()
    return timing.next_after(
        kind=agent.trigger_kind,
        after=now,
        interval=agent.interval_seconds,
        cron=agent.cron_expression,
        tz=agent.timezone,
        anchor=now + timedelta(seconds=agent.interval_seconds or 0),
    )


def _new_secret() -> tuple[str, str]:
    from preferences import crypto

    plain = secrets.token_urlsafe(32)
    return plain, crypto.encrypt(plain)


def _details(agent: Agent) -> dict[str, Any]:
    return {
        "agent_id": agent.pk,
        "name": agent.name,
        "trigger": agent.trigger_kind,
        "node_ids": sorted(n.node_id for n in agent.nodes.all()),
        "paused": agent.paused,
    }


def agent_create(
    *,
    actor: User,
    name: str,
    prompt: str,
    trigger: dict[str, Any],
    node_ids: list[str],
    unattended: dict[str, Any] | None = None,
    audit_context: AuditContext = DEFAULT_CONTEXT,
    **fields: Any,
) -> tuple[Agent, str]:
    """A new agent and its webhook secret in plain text (the only time it is shown)."""
    nodes = _nodes(actor=actor, node_ids=node_ids)
    _check_llm(actor=actor, provider=fields.get("provider", ""), model=fields.get("model", ""))
    agent = Agent(owner=actor, name=name, prompt=prompt)
    for key in UPDATABLE:
        if key in fields:
            setattr(agent, key, fields[key])
    agent.unattended = _clean_unattended(
        (unattended or {}).get("allow", []), [n.node_id for n in nodes]
    )
    _apply_trigger(agent, trigger)
    plain, agent.webhook_secret = _new_secret()
    agent.full_clean(exclude=["owner"])
    with transaction.atomic():
        agent.save()
        agent.nodes.set(nodes)
        audit_record(
            actor=actor,
            action="agents.agent.created",
            target_type="agent",
            target_id=agent.pk,
            audit_context=audit_context,
            details=_details(agent),
        )
    return agent, plain


def agent_update(
    *,
    actor: User,
    agent: Agent,
    data: dict[str, Any],
    audit_context: AuditContext = DEFAULT_CONTEXT,
) -> Agent:
    """Change fields, nodes, trigger or unattended rules, checked as at creation."""
    with transaction.atomic():
        agent = Agent.objects.select_for_update().get(pk=agent.pk)
        nodes = None
        if "node_ids" in data:
            nodes = _nodes(actor=actor, node_ids=data["node_ids"])
        node_ids = (
            [n.node_id for n in nodes]
            if nodes is not None
            else [n.node_id for n in agent.nodes.all()]
        )
        if "provider" in data or "model" in data:
            _check_llm(
                actor=actor,
                provider=data.get("provider", agent.provider),
                model=data.get("model", agent.model),
            )
        if "unattended" in data:
            agent.unattended = _clean_unattended(
                (data["unattended"] or {}).get("allow", []), node_ids
            )
        elif nodes is not None:
            # Rules for nodes no longer attached go with them.
            agent.unattended = [r for r in agent.unattended if r.get("node_id") in node_ids]
        if "trigger" in data:
            _apply_trigger(agent, data["trigger"])
        for key in UPDATABLE:
            if key in data:
                setattr(agent, key, data[key])
        agent.full_clean(exclude=["owner"])
        agent.save()
        if nodes is not None:
            agent.nodes.set(nodes)
        audit_record(
            actor=actor,
            action="agents.agent.updated",
            target_type="agent",
            target_id=agent.pk,
            audit_context=audit_context,
            details={**_details(agent), "fields": sorted(data)},
        )
    return agent


def agent_delete(
    *, actor: User, agent: Agent, audit_context: AuditContext = DEFAULT_CONTEXT
) -> None:
    """Delete the agent and its runs (their chat sessions stay with the owner)."""
    with transaction.atomic():
        audit_record(
            actor=actor,
            action="agents.agent.deleted",
            target_type="agent",
            target_id=agent.pk,
            audit_context=audit_context,
            details=_details(agent),
        )
        agent.delete()


def agent_set_paused(
    *, actor: User, agent: Agent, paused: bool, audit_context: AuditContext = DEFAULT_CONTEXT
) -> Agent:
    """Pause (no tick fires) or resume (ticks start again from now; paused time is not caught
    up)."""
    with transaction.atomic():
        agent = Agent.objects.select_for_update().get(pk=agent.pk)
        data = {"paused": paused}
        if not paused:
            data["next_fire_at"] = _first_tick(agent)
        model_update(instance=agent, fields=("paused", "next_fire_at"), data=data)
        audit_record(
            actor=actor,
            action="agents.agent.paused" if paused else "agents.agent.resumed",
            target_type="agent",
            target_id=agent.pk,
            audit_context=audit_context,
            details=_details(agent),
        )
    return agent


def agent_rotate_secret(
    *, actor: User, agent: Agent, audit_context: AuditContext = DEFAULT_CONTEXT
) -> tuple[Agent, str]:
    """A new webhook secret; the old one stops working at once. Returns it in plain text."""
    plain, cipher = _new_secret()
    with transaction.atomic():
        model_update(instance=agent, fields=("webhook_secret",), data={"webhook_secret": cipher})
        audit_record(
            actor=actor,
            action="agents.agent.secret_rotated",
            target_type="agent",
            target_id=agent.pk,
            audit_context=audit_context,
            details={"agent_id": agent.pk},
        )
    return agent, plain
