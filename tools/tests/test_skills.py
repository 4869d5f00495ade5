"""Skills: system skills read-only, user skills owned and shared, prompt and read_skill."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group

from accounts.models import AuditEvent
from tools.base import ToolContext
from tools.models import Skill
from tools.selectors import skills_prompt_for_user
from tools.services import skill_create, tool_invoke

pytestmark = pytest.mark.django_db

SYSTEM = ["node-diagnostics", "safe-file-editing"]


def names(response) -> list[str]:  # type: ignore[no-untyped-def]
    return [item["name"] for item in response.json()["results"]]


def test_list_holds_system_own_and_group_shared_skills(user, team, make_user, user_client) -> None:  # type: ignore[no-untyped-def]
    colleague = make_user("bob@example.com")
    colleague.groups.add(team)
    stranger = make_user("eve@example.com")
    skill_create(actor=user, name="mine", description="Mine.")
    skill_create(
        actor=colleague, name="shared", description="Shared.", shared_with_groups=[team.pk]
    )
    skill_create(actor=colleague, name="private", description="Bob's only.")
    skill_create(actor=stranger, name="theirs", description="Eve's.")

    response = user_client.get("/api/v1/skills/")
    assert response.status_code == 200
    assert names(response) == [*SYSTEM, "mine", "shared"]
    results = {item["name"]: item for item in response.json()["results"]}
    assert results["node-diagnostics"] | {"instructions": ""} == {
        "key": "node-diagnostics",
        "id": None,
        "name": "node-diagnostics",
        "description": (
            "Find out why a node is slow or full (CPU, memory, disk, processes) without "
            "changing anything."
        ),
        "emoji": "🩺",
        "features": ["chat", "swarm_control"],
        "instructions": "",
        "source": "system",
        "owner": None,
        "owner_email": "",
        "is_enabled": True,
        "read_only": True,
        "files": ["examples/report.md", "scripts/collect.sh"],
        "shared_with_groups": [],
    }
    assert results["node-diagnostics"]["instructions"].startswith("# Diagnosing a node\n")
    assert (results["shared"]["read_only"], results["mine"]["read_only"]) == (True, False)
    assert results["shared"]["shared_with_groups"] == [team.pk]


def test_feature_filter(user, user_client) -> None:  # type: ignore[no-untyped-def]
    skill_create(actor=user, name="voice", description="V.", features=["voice_chat"])
    assert names(user_client.get("/api/v1/skills/?feature=swarm_control")) == ["node-diagnostics"]
    assert names(user_client.get("/api/v1/skills/?feature=voice_chat")) == ["voice"]
    assert user_client.get("/api/v1/skills/?feature=nope").status_code == 400


def test_create_update_delete_own_skill(user, team, user_client) -> None:  # type: ignore[no-untyped-def]
    created = user_client.post(
        "/api/v1/skills/",
        {
            "name": "deploy",
            "description": "How we deploy.\nSecond line.",
            "emoji": "🚀",
            "features": ["chat"],
            "instructions": "Run `make deploy`.",
            "files": {"scripts/deploy.sh": "make deploy\n"},
            "shared_with_groups": [team.pk],
        },
        format="json",
    )
    assert created.status_code == 201, created.content
    body = created.json()
    skill = Skill.objects.get()
    assert body["key"] == str(skill.pk)
    assert (body["description"], body["files"], body["source"]) == (
        "How we deploy. Second line.",
        ["scripts/deploy.sh"],
        "user",
    )
    assert AuditEvent.objects.get(action="skill.created").target_id == str(skill.pk)

    patched = user_client.patch(
        f"/api/v1/skills/{skill.pk}/", {"description": "Deploy safely."}, format="json"
    )
    assert patched.status_code == 200
    assert patched.json()["description"] == "Deploy safely."
    assert AuditEvent.objects.get(action="skill.updated").details == {"fields": ["description"]}

    assert user_client.delete(f"/api/v1/skills/{skill.pk}/").status_code == 204
    assert not Skill.objects.exists()
    assert AuditEvent.objects.get(action="skill.deleted").details == {"name": "deploy"}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "Bad Name", "description": "x"}, "name"),
        ({"name": "ok", "description": "x", "features": ["nope"]}, "features.0"),
        ({"name": "ok", "description": "x", "files": {"../evil": "x"}}, "files"),
        ({"name": "ok", "description": "x", "files": {"notes.txt": "x"}}, "files"),
    ],
)
def test_create_refuses_bad_input(user_client, body, field) -> None:  # type: ignore[no-untyped-def]
    response = user_client.post("/api/v1/skills/", body, format="json")
    assert response.status_code == 400
    assert field in response.json()["error"]["fields"]
    assert not Skill.objects.exists()
    assert not AuditEvent.objects.exists()


def test_names_are_unique_per_owner_and_never_a_system_name(user, user_client) -> None:  # type: ignore[no-untyped-def]
    skill_create(actor=user, name="deploy", description="x")
    again = user_client.post(
        "/api/v1/skills/", {"name": "deploy", "description": "y"}, format="json"
    )
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "skill_name_taken"
    system = user_client.post(
        "/api/v1/skills/", {"name": "node-diagnostics", "description": "y"}, format="json"
    )
    assert system.json()["error"]["code"] == "skill_name_taken"
    assert Skill.objects.count() == 1


def test_sharing_only_with_own_groups(user, user_client) -> None:  # type: ignore[no-untyped-def]
    outsiders = Group.objects.create(name="outsiders")
    response = user_client.post(
        "/api/v1/skills/",
        {"name": "x", "description": "x", "shared_with_groups": [outsiders.pk]},
        format="json",
    )
    assert response.status_code == 400
    assert "shared_with_groups" in response.json()["error"]["fields"]


def test_system_skills_are_read_only_even_for_admins(staff_client) -> None:  # type: ignore[no-untyped-def]
    assert staff_client.get("/api/v1/skills/node-diagnostics/").status_code == 200
    patched = staff_client.patch(
        "/api/v1/skills/node-diagnostics/", {"description": "hacked"}, format="json"
    )
    assert patched.status_code == 403
    assert patched.json()["error"]["code"] == "skill_read_only"
    deleted = staff_client.delete("/api/v1/skills/node-diagnostics/")
    assert deleted.status_code == 403
    assert not AuditEvent.objects.exists()


def test_other_users_skills_answer_404(user, team, make_user, user_client, staff_client) -> None:  # type: ignore[no-untyped-def]
    stranger = make_user("eve@example.com")
    theirs = skill_create(actor=stranger, name="theirs", description="x")
    colleague = make_user("bob@example.com")
    colleague.groups.add(team)
    shared = skill_create(
        actor=colleague, name="shared", description="x", shared_with_groups=[team.pk]
    )
    assert user_client.get(f"/api/v1/skills/{theirs.pk}/").status_code == 404
    assert user_client.patch(f"/api/v1/skills/{theirs.pk}/", {}, format="json").status_code == 404
    assert user_client.delete(f"/api/v1/skills/{theirs.pk}/").status_code == 404
    # A shared skill is visible but only its owner may change it.
    assert user_client.get(f"/api/v1/skills/{shared.pk}/").status_code == 200
    assert user_client.delete(f"/api/v1/skills/{shared.pk}/").status_code == 404
    # Admins do not see users' private skills either.
    assert staff_client.get(f"/api/v1/skills/{theirs.pk}/").status_code == 404
    assert Skill.objects.count() == 2
    assert user_client.get("/api/v1/skills/no-such-skill/").status_code == 404


def test_anonymous_is_refused(anon_client) -> None:  # type: ignore[no-untyped-def]
    assert anon_client.get("/api/v1/skills/").status_code in (401, 403)


def test_list_query_count(user, team, user_client, django_assert_max_num_queries) -> None:  # type: ignore[no-untyped-def]
    for n in range(5):
        skill_create(actor=user, name=f"s{n}", description="x", shared_with_groups=[team.pk])
    with django_assert_max_num_queries(5):
        response = user_client.get("/api/v1/skills/")
    assert len(response.json()["results"]) == 7


def test_prompt_lists_only_names_and_one_line_descriptions(user, make_user) -> None:  # type: ignore[no-untyped-def]
    skill_create(actor=user, name="deploy", description="How we deploy.", instructions="SECRET")
    skill_create(actor=user, name="off", description="Disabled.", is_enabled=False)
    skill_create(actor=make_user("eve@example.com"), name="theirs", description="Eve's.")
    assert skills_prompt_for_user(user=user) == (
        "Skills you can load with the read_skill tool when a task needs them:\n"
        "- 🩺 node-diagnostics: Find out why a node is slow or full (CPU, memory, disk, "
        "processes) without changing anything.\n"
        "- 📝 safe-file-editing: Edit files on a node's workspace with mesh_files so that "
        "nothing is lost.\n"
        "- deploy: How we deploy."
    )


def _context(user) -> ToolContext:  # type: ignore[no-untyped-def]
    return ToolContext(user=user, chat_session_id=41, attached_nodes={}, tool_call_id="call_1")


def test_read_skill_loads_system_instructions_and_files(user) -> None:  # type: ignore[no-untyped-def]
    md = tool_invoke(
        context=_context(user), name="read_skill", arguments={"skill_name": "node-diagnostics"}
    )
    assert md.error_code == ""
    assert md.text.startswith("---\nname: node-diagnostics\n")
    assert "# Diagnosing a node" in md.text
    script = tool_invoke(
        context=_context(user),
        name="read_skill",
        arguments={"skill_name": "node-diagnostics", "file_path": "scripts/collect.sh"},
    )
    assert script.text.startswith("#!/bin/sh\n")
    assert not AuditEvent.objects.exists()


def test_read_skill_loads_user_skills(user) -> None:  # type: ignore[no-untyped-def]
    skill_create(
        actor=user,
        name="deploy",
        description="How we deploy.",
        emoji="🚀",
        instructions="Run `make deploy`.",
        files={"examples/run.md": "make deploy ENV=prod"},
    )
    md = tool_invoke(context=_context(user), name="read_skill", arguments={"skill_name": "deploy"})
    assert md.text == (
        "---\nname: deploy\ndescription: How we deploy.\nemoji: 🚀\nfeatures:\n- chat\n---\n\n"
        "Run `make deploy`.\n"
    )
    example = tool_invoke(
        context=_context(user),
        name="read_skill",
        arguments={"skill_name": "deploy", "file_path": "examples/run.md"},
    )
    assert example.text == "make deploy ENV=prod"


@pytest.mark.parametrize(
    ("arguments", "code"),
    [
        ({"skill_name": "node-diagnostics", "file_path": "../../base.py"}, "path_outside_skill"),
        ({"skill_name": "node-diagnostics", "file_path": "/etc/passwd"}, "path_outside_skill"),
        ({"skill_name": "node-diagnostics", "file_path": "scripts/../../x"}, "path_outside_skill"),
        ({"skill_name": "node-diagnostics", "file_path": "missing.md"}, "skill_not_found"),
        ({"skill_name": "theirs"}, "skill_not_found"),
    ],
)
def test_read_skill_refusals(user, make_user, arguments, code) -> None:  # type: ignore[no-untyped-def]
    skill_create(actor=make_user("eve@example.com"), name="theirs", description="Eve's.")
    result = tool_invoke(context=_context(user), name="read_skill", arguments=arguments)
    assert result.error_code == code
    assert AuditEvent.objects.get(action="tool.refused").details["reason"] == code


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("no front matter", "must start with '---'"),
        ("---\nname: x\n", "not closed"),
        ("---\n- a\n---\nbody", "must be a mapping"),
        ("---\nname: x\n---\nbody", "needs 'description'"),
    ],
)
def test_skill_md_parse_errors(text: str, message: str) -> None:
    from tools.skill_files import SkillFileError, parse_skill_md

    with pytest.raises(SkillFileError, match=message):
        parse_skill_md(text)
