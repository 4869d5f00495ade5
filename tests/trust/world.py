"""A populated hub for the trust suite: two groups, their users, nodes, tasks, chats and secrets.

Everything is made through the apps' services (the way the API makes it); only chat messages
are written as rows, since posting one through the service starts a model turn.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from typing import Any

from django.contrib.auth.models import Group

from accounts.models import User

# Provider keys stored at each preferences layer (plain values: they must never come back).
SYSTEM_KEY = "sk-trust-system-4e8a1c9b7d2f6035"
GROUP_KEY = "sk-trust-group-a-7b3d9f1e5c2a8046"
USER_KEY = "sk-trust-user-a-2f6c8e0a4d1b9357"
OIDC_SECRET = "oidc-client-secret-trust-9c4e7a2b1f8d"
SKILLS = {"shell": True, "files": True, "browser": False, "max_concurrent_tasks": 4}


@dataclass
class Side:
    """What one group's user owns and can see."""

    user: User
    group: Group
    token: str
    token_id: int
    node_id: str
    task_id: uuid.UUID
    session_id: int
    message_id: int
    approval_id: int
    audit_id: int
    rule_id: int
    agent_id: int
    agent_secret: str
    run_id: int
    markers: list[str] = field(default_factory=list)
    terminal_id: uuid.UUID | None = None


@dataclass
class World:
    admin: User
    a: Side
    b: Side
    invites: dict[str, str]

    def secrets(self) -> dict[str, str]:
        """Every plain secret stored in this world, by label."""
        return {
            "provider key (system)": SYSTEM_KEY,
            "provider key (group)": GROUP_KEY,
            "provider key (user)": USER_KEY,
            "personal token (a)": self.a.token,
            "personal token (b)": self.b.token,
            "agent webhook secret (a)": self.a.agent_secret,
            "agent webhook secret (b)": self.b.agent_secret,
            **{f"invite token ({node})": token for node, token in self.invites.items()},
        }


def _side(admin: User, tag: str, *, node_id: str) -> tuple[Side, str]:
    from accounts.models import AuditEvent
    from accounts.services.tokens import token_create
    from mesh import services as mesh_services
    from mesh.services.output import output_append
    from preferences.services import layer_update
    from sessions_app.models import ApprovalRule, Message
    from sessions_app.services.approvals import approval_open
    from sessions_app.services.sessions import node_attach, session_create

    user = User.objects.create_user(email=f"{tag}@example.com", password="correct horse battery")
    group = Group.objects.create(name=f"group-{tag}")
    user.groups.add(group)
    node, invite = mesh_services.node_create(
        actor=admin, node_id=node_id, display_name=f"{tag} box", skill_config=SKILLS
    )
    mesh_services.node_grant(actor=admin, node=node, group=group)
    task = mesh_services.task_dispatch(
        actor=user, node=node, kind="shell", payload={"command": f"echo {tag}-task-cmd"}
    )
    output_append(
        node_id=node_id,
        task_id=str(task.pk),
        seq=1,
        stream="stdout",
        data=f"{tag}-output\n".encode(),
    )
    session = session_create(actor=user, title=f"{tag}-private-session")
    node_attach(actor=user, session=session, node_id=node_id, working_dir="/srv")
    Message.objects.create(session=session, role="user", content=f"{tag}-message-text")
    answer = Message.objects.create(session=session, role="assistant", status="streaming")
    approval, _ = approval_open(
        session_id=session.pk,
        message_id=answer.pk,
        tool_call_id="call-1",
        tool_name="mesh_terminal",
        node_id=node_id,
        arguments={"command": f"echo {tag}-approval-args"},
        reason="sensitive",
        timeout=600,
    )
    layer_update(
        actor=user, scope="user", kind="llm", user=user, data={"model": f"{tag}-user-model"}
    )
    layer_update(
        actor=admin, scope="group", kind="tts", group=group, data={"model": f"{tag}-group-model"}
    )
    row, token = token_create(actor=user, user=user, name=f"{tag}-token-name")
    rule = ApprovalRule.objects.create(
        owner=user, node=node, tool_name="mesh_terminal", command_patterns=[f"{tag}-rule-cmd"]
    )
    from agents.services import agent_create, run_now

    agent, agent_secret = agent_create(
        actor=user,
        name=f"{tag}-agent-name",
        prompt=f"{tag}-agent-prompt",
        node_ids=[node_id],
        trigger={"kind": "cron", "expression": "0 3 * * *", "timezone": "UTC"},
    )
    run = run_now(actor=user, agent=agent)
    audit = AuditEvent.objects.filter(actor=user).order_by("-id").first()
    assert audit is not None
    from mesh.models import TerminalChunk, TerminalSession

    terminal = TerminalSession.objects.create(node=node, user=user, status="exited", exit_code=0)
    TerminalChunk.objects.create(session=terminal, seq=1, data=f"{tag}-terminal-out".encode())
    side = Side(
        user=user,
        group=group,
        token=token,
        token_id=row.pk,
        node_id=node_id,
        task_id=task.pk,
        session_id=session.pk,
        message_id=answer.pk,
        approval_id=approval.pk,
        audit_id=audit.pk,
        rule_id=rule.pk,
        agent_id=agent.pk,
        agent_secret=agent_secret,
        run_id=run.pk,
        markers=[
            f"{tag}-agent-name",
            f"{tag}-agent-prompt",
            f"{tag}-rule-cmd",
            node_id,
            str(task.pk),
            f"{tag}-task-cmd",
            f"{tag}-output",
            f"{tag}-private-session",
            f"{tag}-message-text",
            f"{tag}-approval-args",
            f"{tag}-user-model",
            f"{tag}-group-model",
            f"{tag}-token-name",
            f"{tag}@example.com",
            f"group-{tag}",
            f"{tag}-terminal-out",
        ],
        terminal_id=terminal.pk,
    )
    return side, invite


def build_world(admin: User) -> World:
    """Group alpha and group bravo, each with a user, a node, a task, a chat and a token."""
    from preferences.services import layer_update

    a, invite_a = _side(admin, "alpha", node_id="alpha-node")
    b, invite_b = _side(admin, "bravo", node_id="bravo-node")
    layer_update(
        actor=admin,
        scope="system",
        kind="llm",
        data={"provider": "openai_compatible", "base_url": "http://127.0.0.1:9/v1"},
    )
    layer_update(actor=admin, scope="system", kind="llm", data={"api_key": SYSTEM_KEY})
    layer_update(actor=admin, scope="group", kind="llm", group=a.group, data={"api_key": GROUP_KEY})
    layer_update(actor=a.user, scope="user", kind="llm", user=a.user, data={"api_key": USER_KEY})
    return World(admin=admin, a=a, b=b, invites={"alpha-node": invite_a, "bravo-node": invite_b})


def snapshot(world: World) -> dict[str, Any]:
    """Everything of group alpha that a cross-group caller must not be able to change."""
    from accounts.models import ApiToken
    from agents.models import Agent, AgentRun
    from mesh.models import NodeGroupAccess, Task, TaskOutputChunk
    from preferences.models import PreferenceLayer
    from sessions_app.models import ChatSession, Message, SessionNode, ToolApproval

    a = world.a
    task = Task.objects.get(pk=a.task_id)
    session = ChatSession.objects.get(pk=a.session_id)
    return {
        "task": (task.status, task.cancel_requested_at, task.last_seq),
        "tasks": Task.objects.count(),
        "output": list(TaskOutputChunk.objects.filter(task=task).values_list("seq", "data")),
        "session": (session.title, session.approval_policy, session.is_archived),
        "messages": Message.objects.filter(session=session).count(),
        "attachments": list(SessionNode.objects.filter(session=session).values_list("node_id")),
        "approval": ToolApproval.objects.get(pk=a.approval_id).status,
        "token": ApiToken.objects.filter(pk=a.token_id).values_list("revoked_at").first(),
        "grants": list(NodeGroupAccess.objects.order_by("pk").values_list("node_id", "group_id")),
        "layers": sorted(
            (str(row.scope), str(row.kind), str(row.values), str(row.secrets))
            for row in PreferenceLayer.objects.all()
        ),
        "members": list(a.group.user_set.values_list("pk", flat=True)),
        "agent": list(
            Agent.objects.filter(pk=a.agent_id).values_list(
                "name", "paused", "webhook_secret", "next_fire_at"
            )
        ),
        "agent_runs": list(
            AgentRun.objects.filter(agent_id=a.agent_id).values_list("pk", "status")
        ),
    }
