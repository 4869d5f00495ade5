"""Skill and tool-switch writes called as services: name rules, group sharing, audit rows."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group

from accounts.models import AuditEvent
from cortex.errors import ValidationFailed
from tools.models import Skill, ToolSwitch
from tools.selectors import tool_names_switched_off_for_user
from tools.services import (
    SkillNameTaken,
    skill_create,
    skill_delete,
    skill_update,
    tool_switch_create,
    tool_switch_delete,
)
from tools.services.skills import groups_by_id

pytestmark = pytest.mark.django_db


def test_groups_by_id_orders_by_id_drops_duplicates_and_refuses_unknown(team):
    other = Group.objects.create(name="other")
    assert groups_by_id([other.pk, team.pk, other.pk], field="g") == [team, other]
    assert groups_by_id([], field="g") == []
    with pytest.raises(ValidationFailed) as exc:
        groups_by_id([team.pk, other.pk + 1000], field="shared_with_groups")
    assert exc.value.fields == {"shared_with_groups": ["Unknown group."]}


def test_skill_update_changes_fields_and_audits_the_field_names(user, team):
    skill = skill_create(actor=user, name="deploy", description="Ship it.")
    skill_update(
        actor=user,
        skill=skill,
        data={
            "description": "  Ship   it\n safely. ",
            "features": ["chat", "chat"],
            "files": {"scripts/./run.sh": "echo hi"},
            "shared_with_groups": [team.pk],
        },
    )
    skill.refresh_from_db()
    assert skill.description == "Ship it safely."
    assert skill.features == ["chat"] and skill.files == {"scripts/run.sh": "echo hi"}
    assert list(skill.shared_with_groups.all()) == [team]
    event = AuditEvent.objects.get(action="skill.updated")
    assert event.details == {"fields": ["description", "features", "files", "shared_with_groups"]}


@pytest.mark.parametrize(
    ("data", "field"),
    [
        ({"files": {"../etc/passwd": "x"}}, "files"),
        ({"files": {"/abs/scripts/x": "x"}}, "files"),
        ({"files": {"scripts": "x"}}, "files"),
        ({"features": ["teleport"]}, "features"),
    ],
)
def test_skill_update_refuses_bad_files_and_features_without_writing(user, data, field):
    skill = skill_create(actor=user, name="deploy", description="Ship it.")
    with pytest.raises(ValidationFailed) as exc:
        skill_update(actor=user, skill=skill, data=data)
    assert field in exc.value.fields
    skill.refresh_from_db()
    assert skill.files == {} and skill.features == ["chat"]
    assert not AuditEvent.objects.filter(action="skill.updated").exists()


def test_skill_update_refuses_taken_names_and_foreign_groups(user, make_user):
    skill_create(actor=user, name="one", description="One.")
    two = skill_create(actor=user, name="two", description="Two.")
    with pytest.raises(SkillNameTaken) as taken:
        skill_update(actor=user, skill=two, data={"name": "one"})
    assert taken.value.code == "skill_name_taken"
    with pytest.raises(SkillNameTaken):
        skill_update(actor=user, skill=two, data={"name": "node-diagnostics"})
    outsiders = Group.objects.create(name="outsiders")
    with pytest.raises(ValidationFailed) as foreign:
        skill_update(actor=user, skill=two, data={"shared_with_groups": [outsiders.pk]})
    assert "shared_with_groups" in foreign.value.fields
    two.refresh_from_db()
    assert two.name == "two" and not two.shared_with_groups.exists()
    # Another owner may use the same name.
    bob = make_user("bob@example.com")
    theirs = skill_create(actor=bob, name="mine", description="Bob's.")
    skill_update(actor=bob, skill=theirs, data={"name": "two"})
    assert Skill.objects.filter(name="two").count() == 2


def test_skill_delete_removes_it_and_audits_its_name(user):
    skill = skill_create(actor=user, name="deploy", description="Ship it.")
    skill_pk = skill.pk
    skill_delete(actor=user, skill=skill)
    assert not Skill.objects.filter(pk=skill_pk).exists()
    event = AuditEvent.objects.get(action="skill.deleted")
    assert event.target_id == str(skill_pk) and event.details == {"name": "deploy"}


def test_tool_switch_delete_switches_the_tool_back_on_for_that_scope(user, team, staff_user):
    everyone = tool_switch_create(actor=staff_user, tool_name="read_skill")
    for_team = tool_switch_create(actor=staff_user, tool_name="mesh_files", group_id=team.pk)
    assert tool_names_switched_off_for_user(user=user) >= {"read_skill", "mesh_files"}
    tool_switch_delete(actor=staff_user, switch=for_team)
    off = tool_names_switched_off_for_user(user=user)
    assert "mesh_files" not in off and "read_skill" in off
    assert list(ToolSwitch.objects.all()) == [everyone]
    event = AuditEvent.objects.get(action="tool.switched_on")
    assert event.target_id == "mesh_files" and event.details == {"group": team.pk}
