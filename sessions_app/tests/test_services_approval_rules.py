"""sessions_app/services/approval_rules.py: rules are made only from approvals they cover,
matched per owner, session and node, counted and audited when used, and revoked."""

from __future__ import annotations

from typing import Any

import pytest

from accounts.models import AuditEvent
from mesh import services as mesh_services
from sessions_app.models import ApprovalRule, ToolApproval
from sessions_app.services.approval_rules import (
    RuleNotPossible,
    approval_rule_create,
    approval_rule_delete,
    approval_rule_match,
    approval_rule_suggestion,
    approval_rule_used,
    clean_patterns,
)
from sessions_app.services.approvals import approval_open
from sessions_app.services.messages import message_post
from sessions_app.services.sessions import session_create

pytestmark = pytest.mark.django_db


@pytest.fixture
def chat(user) -> Any:  # type: ignore[no-untyped-def]
    return session_create(actor=user, approval_policy="ask")


def _approval(
    chat: Any, *, node_id: str = "box", reason: str = "risk:exec", **arguments: Any
) -> ToolApproval:
    _, assistant = message_post(actor=chat.owner, session=chat, content="go", start_turn=False)
    approval, _ = approval_open(
        session_id=chat.pk,
        message_id=assistant.pk,
        tool_call_id=f"call-{assistant.pk}",
        tool_name="mesh_terminal" if "command" in arguments else "browser",
        node_id=node_id,
        arguments={"node_id": node_id, **arguments},
        reason=reason,
        timeout=60,
    )
    # One turn at a time per session: end this one so the next helper call may post.
    assistant.status = "done"
    assistant.save(update_fields=["status"])
    return approval


def test_clean_patterns_normalises_and_deduplicates() -> None:
    assert clean_patterns(["  git   status ", "git status", "", "ls"]) == ["git status", "ls"]


@pytest.mark.parametrize(
    "patterns",
    [[], ["   "], ["@network"], ["*"], ["-- -"], ["/usr/bin/*"], ["a b c d e f g"], ["x" * 201]],
)
def test_clean_patterns_refuses_what_would_match_nearly_anything(patterns) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(RuleNotPossible) as caught:
        clean_patterns(patterns)
    assert caught.value.code == "rule_not_possible"
    assert list(caught.value.fields or {}) == ["patterns"]


def test_clean_patterns_caps_the_count() -> None:
    with pytest.raises(RuleNotPossible) as caught:
        clean_patterns([f"cmd{i}" for i in range(9)])
    assert caught.value.fields == {"patterns": ["At most 8 patterns."]}


def test_approval_rule_suggestion(chat, box) -> None:  # type: ignore[no-untyped-def]
    assert approval_rule_suggestion(approval=_approval(chat, command="git status")) == [
        "git status"
    ]
    assert approval_rule_suggestion(approval=_approval(chat, command="ls -la | wc -l")) == [
        "ls",
        "wc",
    ]
    assert approval_rule_suggestion(approval=_approval(chat, action="evaluate")) == ["evaluate"]
    sensitive = _approval(chat, reason="sensitive_command", command="rm -rf x")
    assert approval_rule_suggestion(approval=sensitive) is None
    assert approval_rule_suggestion(approval=_approval(chat, node_id="", command="ls")) is None
    assert approval_rule_suggestion(approval=_approval(chat, command="'unclosed")) is None


def test_approval_rule_create_for_this_chat_or_for_me(user, chat, box) -> None:  # type: ignore[no-untyped-def]
    here = approval_rule_create(
        actor=user, approval=_approval(chat, command="git status"), remember="session"
    )
    assert (here.session_id, here.node, here.command_patterns) == (chat.pk, box, ["git status"])
    everywhere = approval_rule_create(
        actor=user,
        approval=_approval(chat, command="git log --oneline"),
        remember="me",
        patterns=["git log"],
    )
    assert everywhere.session_id is None and everywhere.command_patterns == ["git log"]
    by_action = approval_rule_create(
        actor=user, approval=_approval(chat, action="snapshot"), remember="me"
    )
    assert (by_action.action, by_action.command_patterns) == ("snapshot", [])
    rows = AuditEvent.objects.filter(action="sessions.approval_rule.created").order_by("id")
    assert [r.details["rule_id"] for r in rows] == [here.pk, everywhere.pk, by_action.pk]
    assert rows[0].details["command_patterns"] == ["git status"]


@pytest.mark.parametrize(
    ("kwargs", "patterns"),
    [
        ({"reason": "sensitive_command", "command": "rm -rf build"}, None),
        ({"node_id": "", "command": "ls"}, None),
        ({"node_id": "gone", "command": "ls"}, None),
        ({"command": "git push"}, ["git status"]),  # does not cover the call
        ({"command": "git status && curl x"}, ["git status"]),
        ({}, None),  # neither a command nor an action
    ],
)
def test_approval_rule_create_refuses_and_stores_nothing(user, chat, box, kwargs, patterns) -> None:  # type: ignore[no-untyped-def]
    approval = _approval(chat, **kwargs)
    with pytest.raises(RuleNotPossible) as caught:
        approval_rule_create(actor=user, approval=approval, remember="me", patterns=patterns)
    assert caught.value.code == "rule_not_possible"
    assert not ApprovalRule.objects.exists()
    assert not AuditEvent.objects.filter(action="sessions.approval_rule.created").exists()


def test_approval_rule_match_by_owner_session_and_node(
    user, make_user, chat, box, staff_user
) -> None:  # type: ignore[no-untyped-def]
    approval_rule_create(
        actor=user, approval=_approval(chat, command="git status"), remember="session"
    )
    other_chat = session_create(actor=user, approval_policy="ask")
    other_node, _ = mesh_services.node_create(actor=staff_user, node_id="other", display_name="O")
    call = {"node_id": "box", "command": "git status"}

    def match(**over: Any) -> Any:
        args = {
            "user": user,
            "session_id": chat.pk,
            "tool_name": "mesh_terminal",
            "nodes": [box],
            "arguments": call,
            **over,
        }
        return approval_rule_match(**args)

    (rule,) = match()
    assert rule.command_patterns == ["git status"]
    assert match(session_id=other_chat.pk) is None  # a rule for that chat only
    assert match(user=make_user("eve@example.com")) is None
    assert match(nodes=[]) is None
    assert match(nodes=[box, other_node]) is None  # every target node needs its own rule
    assert match(tool_name="mesh_files") is None
    assert match(arguments={"node_id": "box", "command": "git status; rm -rf /"}) is None

    approval_rule_create(actor=user, approval=_approval(chat, command="git status"), remember="me")
    assert match(session_id=other_chat.pk) is not None


def test_approval_rule_used_counts_and_audits_as_the_owner(user, chat, box) -> None:  # type: ignore[no-untyped-def]
    rule = approval_rule_create(
        actor=user, approval=_approval(chat, command="git status"), remember="me"
    )
    call = {"call_id": "c-1", "arguments": {"node_id": "box", "command": "git status"}}
    approval_rule_used(rules=[rule], session_id=chat.pk, message_id=7, call=call)
    approval_rule_used(rules=[rule], session_id=chat.pk, message_id=8, call=call)
    rule.refresh_from_db()
    assert rule.use_count == 2 and rule.last_used_at is not None
    rows = AuditEvent.objects.filter(action="sessions.approval_rule.used").order_by("id")
    assert [(r.actor, r.source, r.details["message_id"]) for r in rows] == [
        (user, "chat", 7),
        (user, "chat", 8),
    ]
    assert rows[0].details["tool_call_id"] == "c-1"
    assert rows[0].details["arguments"] == call["arguments"]


def test_approval_rule_delete_revokes_and_audits(user, chat, box) -> None:  # type: ignore[no-untyped-def]
    rule = approval_rule_create(
        actor=user, approval=_approval(chat, command="git status"), remember="me"
    )
    pk = rule.pk
    approval_rule_delete(actor=user, rule=rule)
    assert not ApprovalRule.objects.filter(pk=pk).exists()
    row = AuditEvent.objects.get(action="sessions.approval_rule.revoked")
    assert (row.actor, row.target_id, row.details["command_patterns"]) == (
        user,
        str(pk),
        ["git status"],
    )
