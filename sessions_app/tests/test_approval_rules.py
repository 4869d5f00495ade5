"""Standing approval rules: "always allow" answers, consulted before asking, audited, revoked.

Turns run against the loopback model server; the node is real in the database (it never
connects, so commands are queued in the background and never run)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from rest_framework.test import APIClient

from accounts.models import AuditEvent
from cortex.testing import wait_until
from mesh.models import Task
from providers.tests.llm_server import openai_text, openai_tool_call
from sessions_app.models import ApprovalRule, Message, ToolApproval
from sessions_app.services.approval_rules import command_covered, suggested_patterns
from sessions_app.tests.conftest import configure_llm

pytestmark = pytest.mark.django_db(transaction=True)


def _session(client: Any) -> int:
    sid = client.post("/api/v1/sessions/", {"approval_policy": "ask"}, format="json").json()["id"]
    response = client.post(f"/api/v1/sessions/{sid}/nodes/", {"node_id": "box"}, format="json")
    assert response.status_code == 201, response.content
    return sid


def _call(llm_server: Any, call_id: str, command: str) -> None:
    arguments = {"node_id": "box", "command": command, "background": True}
    llm_server.add(openai_tool_call([(call_id, "mesh_terminal", json.dumps(arguments))]))
    llm_server.add(openai_text(["ok"]))


def _turn(client: Any, sid: int, content: str = "go") -> None:
    done = Message.objects.filter(session_id=sid, role="assistant", status="done").count()
    response = client.post(f"/api/v1/sessions/{sid}/messages/", {"content": content}, format="json")
    assert response.status_code == 202, response.content
    wait_until(
        lambda: (
            Message.objects.filter(session_id=sid, role="assistant", status="done").count()
            >= done + 2
            or ToolApproval.objects.filter(session_id=sid, status="pending").exists()
        )
    )


def _pending(sid: int) -> ToolApproval:
    return wait_until(lambda: ToolApproval.objects.filter(session_id=sid, status="pending").first())


def _finish(sid: int, count: int) -> None:
    wait_until(
        lambda: (
            Message.objects.filter(session_id=sid, role="assistant", status="done").count() == count
        )
    )


def test_always_allow_for_this_chat_then_the_same_command_runs_without_asking(
    user, user_client, llm_server, fast_turns, box
):
    configure_llm(user, llm_server)
    sid = _session(user_client)
    _call(llm_server, "first", "git status")
    _turn(user_client, sid)
    approval = _pending(sid)
    listed = user_client.get(f"/api/v1/sessions/{sid}/approvals/").json()["results"]
    assert [(a["id"], a["suggested_patterns"], a["decided_by"]) for a in listed] == [
        (approval.pk, ["git status"], None)
    ]

    response = user_client.post(
        f"/api/v1/sessions/{sid}/approvals/{approval.pk}/approve/",
        {"remember": "session"},
        format="json",
    )
    assert response.status_code == 200, response.content
    assert response.json()["decided_by"] == "alice@example.com"
    _finish(sid, 2)
    [rule] = ApprovalRule.objects.all()
    assert (rule.owner, rule.session_id, rule.node, rule.tool_name, rule.command_patterns) == (
        user,
        sid,
        box,
        "mesh_terminal",
        ["git status"],
    )
    created = AuditEvent.objects.get(action="sessions.approval_rule.created")
    assert created.details["command_patterns"] == ["git status"]

    # The same command again: no question, the task is queued, the use is audited.
    _call(llm_server, "second", "git status")
    _turn(user_client, sid)
    _finish(sid, 4)
    assert ToolApproval.objects.filter(session_id=sid).count() == 1
    assert Task.objects.filter(tool_call_id="second").count() == 1
    used = AuditEvent.objects.get(action="sessions.approval_rule.used")
    assert (used.actor, used.target_id, used.details["tool_call_id"]) == (
        user,
        str(rule.pk),
        "second",
    )
    rule.refresh_from_db()
    assert rule.use_count == 1

    # Another command, or the same one with something else chained: asks again.
    _call(llm_server, "third", "git status && curl http://example.com")
    _turn(user_client, sid)
    third = _pending(sid)
    assert (third.tool_call_id, third.reason) == ("third", "risk:exec")
    user_client.post(f"/api/v1/sessions/{sid}/approvals/{third.pk}/deny/")
    _finish(sid, 6)

    # Revoked: the next identical call asks a person again.
    assert user_client.delete(f"/api/v1/approval-rules/{rule.pk}/").status_code == 204
    assert AuditEvent.objects.filter(action="sessions.approval_rule.revoked").count() == 1
    _call(llm_server, "fourth", "git status")
    _turn(user_client, sid)
    assert _pending(sid).tool_call_id == "fourth"


def test_a_sensitive_command_is_never_remembered_and_stays_undecided(
    user, user_client, llm_server, fast_turns, box
):
    configure_llm(user, llm_server)
    sid = _session(user_client)
    _call(llm_server, "wipe", "rm -rf build")
    _turn(user_client, sid)
    approval = _pending(sid)
    listed = user_client.get(f"/api/v1/sessions/{sid}/approvals/").json()["results"]
    assert listed[0]["suggested_patterns"] is None
    response = user_client.post(
        f"/api/v1/sessions/{sid}/approvals/{approval.pk}/approve/",
        {"remember": "me", "patterns": ["rm"]},
        format="json",
    )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "rule_not_possible"
    approval.refresh_from_db()
    assert approval.status == "pending"
    assert not ApprovalRule.objects.exists()
    assert not AuditEvent.objects.filter(action__startswith="sessions.approval").exists()


@pytest.mark.parametrize(
    ("patterns", "problem"),
    [
        (["*"], "the command name must be spelled out"),
        (["@pipe_to_shell"], "rules can only be used to deny or flag"),
        (["ls"], None),  # does not cover `git status`
    ],
)
def test_patterns_that_match_anything_or_miss_the_command_are_refused(
    user, user_client, llm_server, fast_turns, box, patterns, problem
):
    configure_llm(user, llm_server)
    sid = _session(user_client)
    _call(llm_server, "c", "git status")
    _turn(user_client, sid)
    approval = _pending(sid)
    response = user_client.post(
        f"/api/v1/sessions/{sid}/approvals/{approval.pk}/approve/",
        {"remember": "session", "patterns": patterns},
        format="json",
    )
    assert response.status_code == 400
    body = response.json()["error"]
    assert body["code"] == "rule_not_possible"
    if problem:
        assert problem in body["fields"]["patterns"][0]
    approval.refresh_from_db()
    assert approval.status == "pending"
    assert not ApprovalRule.objects.exists()


def test_a_rule_for_me_applies_in_my_other_chats_but_not_to_other_people(
    user, user_client, llm_server, fast_turns, box, make_user
):
    configure_llm(user, llm_server)
    first = _session(user_client)
    _call(llm_server, "a", "make test")
    _turn(user_client, first)
    approval = _pending(first)
    user_client.post(
        f"/api/v1/sessions/{first}/approvals/{approval.pk}/approve/",
        {"remember": "me", "patterns": ["make *"]},
        format="json",
    )
    _finish(first, 2)
    second = _session(user_client)
    _call(llm_server, "b", "make lint")
    _turn(user_client, second)
    _finish(second, 2)
    assert not ToolApproval.objects.filter(session_id=second).exists()
    assert Task.objects.filter(tool_call_id="b").count() == 1

    # Another user sees none of it, and cannot revoke it.
    bob = make_user("bob@example.com")
    bob_client = APIClient()
    bob_client.force_authenticate(bob)
    assert bob_client.get("/api/v1/approval-rules/").json()["results"] == []
    rule = ApprovalRule.objects.get()
    assert bob_client.delete(f"/api/v1/approval-rules/{rule.pk}/").status_code == 404
    assert ApprovalRule.objects.filter(pk=rule.pk).exists()
    mine = user_client.get("/api/v1/approval-rules/").json()["results"]
    assert [(r["scope"], r["node_id"], r["command_patterns"], r["use_count"]) for r in mine] == [
        ("me", "box", ["make *"], 1)
    ]


def test_a_rule_never_covers_what_the_node_policy_later_denies_or_flags(box):
    from mesh.agent.sandbox import default_policy

    box.sandbox_policy = default_policy()
    assert command_covered(patterns=["git status"], node=box, command="git status")
    box.sandbox_policy = {**default_policy(), "denied_commands": ["git"]}
    assert not command_covered(patterns=["git status"], node=box, command="git status")
    box.sandbox_policy = {**default_policy(), "sensitive_commands": ["git status"]}
    assert not command_covered(patterns=["git status"], node=box, command="git status")


@pytest.mark.parametrize(
    "command",
    [
        "bash -c 'rm -rf /tmp/x'",
        "sudo git status",
        "git status; curl http://x",
        "git status | sh",
        "git push",
        "$(echo git) status",
        "env X=1 python3 -c 'import os'",
        "git status > /etc/passwd",
    ],
)
def test_a_rule_covers_only_commands_every_part_of_which_it_names(box, command):
    from mesh.agent.sandbox import default_policy

    box.sandbox_policy = default_policy()
    assert not command_covered(patterns=["git status", "bash"], node=box, command=command)


def test_suggested_patterns_are_the_first_words():
    assert suggested_patterns("git status") == ["git status"]
    assert suggested_patterns("ls -l /tmp") == ["ls"]
    assert suggested_patterns("ps aux | grep x") == ["ps", "grep"]
    assert suggested_patterns("echo 'unterminated") == []


def test_decided_approvals_show_who_and_when(user, user_client, llm_server, fast_turns, box):
    configure_llm(user, llm_server)
    sid = _session(user_client)
    _call(llm_server, "c", "uptime")
    _turn(user_client, sid)
    approval = _pending(sid)
    user_client.post(f"/api/v1/sessions/{sid}/approvals/{approval.pk}/deny/")
    _finish(sid, 2)
    assert user_client.get(f"/api/v1/sessions/{sid}/approvals/").json()["results"] == []
    [row] = user_client.get(f"/api/v1/sessions/{sid}/approvals/?status=all").json()["results"]
    assert (row["status"], row["decided_by"]) == ("denied", "alice@example.com")
    assert row["decided_at"]
    bad = user_client.get(f"/api/v1/sessions/{sid}/approvals/?status=maybe")
    assert bad.status_code == 400


def test_model_choices_offer_only_the_models_groups_allow(user, user_client, staff_user, box):
    from django.contrib.auth.models import Group

    from preferences.services import layer_update

    layer_update(
        actor=staff_user,
        scope="group",
        kind="llm",
        group=Group.objects.get(name="team"),
        data={"allowed_models": ["model-b", "model-a"]},
    )
    layer_update(
        actor=user,
        scope="user",
        kind="llm",
        user=user,
        data={"provider": "openai_compatible", "model": "model-a"},
    )
    sid = _session(user_client)
    choices = user_client.get(f"/api/v1/sessions/{sid}/model-choices/").json()
    assert (choices["model"], choices["model_source"], choices["allowed_models"]) == (
        "model-a",
        "user",
        ["model-a", "model-b"],
    )
    refused = user_client.patch(f"/api/v1/sessions/{sid}/", {"model": "model-z"}, format="json")
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "model_not_allowed"
    ok = user_client.patch(f"/api/v1/sessions/{sid}/", {"model": "model-b"}, format="json")
    assert ok.status_code == 200
    choices = user_client.get(f"/api/v1/sessions/{sid}/model-choices/").json()
    assert (choices["model"], choices["model_source"], choices["session_model"]) == (
        "model-b",
        "session",
        "model-b",
    )
    assert user_client.get("/api/v1/sessions/999999/model-choices/").status_code == 404
