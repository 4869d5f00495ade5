"""Fixtures for preferences tests: groups and a layer writer that goes through the service."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Group

from preferences.models import Scope
from preferences.services import layer_update


@pytest.fixture
def group_eng(db, user):  # type: ignore[no-untyped-def]
    group = Group.objects.create(name="eng")
    user.groups.add(group)
    return group


@pytest.fixture
def set_layer(staff_user):  # type: ignore[no-untyped-def]
    """set_layer(scope, kind, data, user=None, group=None) via layer_update, as an admin."""

    def _set(scope: str, kind: str, data: dict, *, user=None, group=None, replace=False):  # type: ignore[no-untyped-def]
        return layer_update(
            actor=user if scope == Scope.USER else staff_user,
            scope=scope,
            kind=kind,
            data=data,
            user=user,
            group=group,
            replace=replace,
        )

    return _set
