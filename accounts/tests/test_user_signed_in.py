"""`accounts.selectors.user_signed_in`: transports act only for a signed-in account."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import AnonymousUser
from django.utils.functional import SimpleLazyObject

from accounts.selectors import user_signed_in
from cortex.errors import NotAuthenticated


def test_a_signed_in_user_is_returned_as_is(user):
    assert user_signed_in(user=user) is user


def test_the_lazy_request_user_counts_as_the_user(user):
    lazy = SimpleLazyObject(lambda: user)  # what Django's request.user is at run time
    assert user_signed_in(user=lazy) == user  # type: ignore[arg-type]


def test_an_anonymous_caller_is_refused():
    with pytest.raises(NotAuthenticated) as exc:
        user_signed_in(user=AnonymousUser())
    assert exc.value.code == "not_authenticated"
