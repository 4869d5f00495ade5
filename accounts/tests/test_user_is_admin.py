"""One rule of "is an admin" (`accounts.selectors.user_is_admin`), used by every former copy:
signed in, active and staff. A deactivated admin is no admin anywhere (two copies ignored
`is_active`), and `is_superuser` alone grants nothing."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import AnonymousUser, Group
from rest_framework.test import APIRequestFactory

from accounts import selectors as accounts_selectors
from accounts.selectors import user_is_admin
from cortex.api.viewsets import IsStaff
from mesh import selectors as mesh_selectors
from preferences import selectors as preferences_selectors
from tools import selectors as tools_selectors
from tools.services import tool_switch_create

pytestmark = pytest.mark.django_db


def _admin_views(user: Any) -> dict[str, bool]:
    """What each place that asks "is an admin" answers for `user`."""
    request = APIRequestFactory().get("/")
    request.user = user
    return {
        "permission": IsStaff().has_permission(request, None),  # type: ignore[arg-type]
        "audit": accounts_selectors.audit_list(user=user).exists(),
        "users": accounts_selectors.user_list(user=user).exists(),
        "nodes": mesh_selectors.node_list_for_user(user=user).exists(),
        "tool_switches": tools_selectors.tool_switch_list(user=user).exists(),
        "layers": preferences_selectors.layer_list_for_admin(user=user).exists(),
    }


def test_every_place_asks_the_one_rule(staff_user, make_user) -> None:  # type: ignore[no-untyped-def]
    from mesh import services as mesh_services
    from preferences.models import PreferenceLayer

    mesh_services.node_create(actor=staff_user, node_id="n1", display_name="N1")  # audited
    tool_switch_create(actor=staff_user, tool_name="mesh_terminal", reason="x")
    PreferenceLayer.objects.create(scope="system", kind="llm")

    deactivated = make_user(is_staff=True)
    deactivated.is_active = False  # as `user_deactivate` leaves an admin who leaves
    deactivated.save()
    superuser_only = make_user(is_superuser=True)
    plain = make_user()
    plain.groups.add(Group.objects.create(name="none"))

    assert user_is_admin(staff_user)
    assert set(_admin_views(staff_user).values()) == {True}
    for user in (deactivated, superuser_only, plain, AnonymousUser()):
        assert not user_is_admin(user)
        assert set(_admin_views(user).values()) == {False}, _admin_views(user)
    assert not user_is_admin(None)
