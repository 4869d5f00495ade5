"""mesh/services/_common.py: secrets, constant-time hash checks, skill config and sandbox policy."""

from __future__ import annotations

import pytest

from cortex.errors import ValidationFailed
from mesh.agent.skill_names import SKILLS
from mesh.services._common import (
    clean_sandbox_policy,
    clean_skill_config,
    new_secret,
    same_hash,
    sha256_hex,
)


def test_new_secret_is_prefixed_random_and_url_safe() -> None:
    first, second = new_secret("cni_"), new_secret("cni_")
    assert first.startswith("cni_") and second.startswith("cni_")
    assert first != second
    assert len(first) > 40
    assert all(c.isalnum() or c in "-_" for c in first)


def test_same_hash_matches_only_the_secret_it_was_made_from() -> None:
    stored = sha256_hex("cnc_right")
    assert same_hash("cnc_right", stored)
    assert not same_hash("cnc_wrong", stored)
    assert not same_hash("", stored)
    assert not same_hash("cnc_right", "")


def test_clean_skill_config_completes_from_defaults_and_base() -> None:
    default = clean_skill_config(None)
    assert set(default) == {*SKILLS, "max_concurrent_tasks"}
    base = {**default, "shell": False, "max_concurrent_tasks": 4}
    merged = clean_skill_config({"files": False}, base=base)
    assert merged == {**base, "files": False}
    assert clean_skill_config(None, base=base) == base


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ({"telnet": True}, "Unknown key 'telnet'."),
        ({"shell": "yes"}, "shell must be true or false."),
        ({"max_concurrent_tasks": 0}, "max_concurrent_tasks must be an integer from 1 to 64."),
        ({"max_concurrent_tasks": 65}, "max_concurrent_tasks must be an integer from 1 to 64."),
        ({"max_concurrent_tasks": True}, "max_concurrent_tasks must be an integer from 1 to 64."),
        ({"max_concurrent_tasks": 2.5}, "max_concurrent_tasks must be an integer from 1 to 64."),
    ],
)
def test_clean_skill_config_refuses_what_it_does_not_know(value, problem) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValidationFailed) as caught:
        clean_skill_config(value)
    assert caught.value.code == "invalid_input"
    assert problem in caught.value.fields["skill_config"]


def test_clean_skill_config_refuses_a_non_object() -> None:
    with pytest.raises(ValidationFailed) as caught:
        clean_skill_config(["shell"])
    assert caught.value.fields == {"skill_config": ["Must be an object."]}


def test_clean_sandbox_policy_returns_the_agents_own_normal_form() -> None:
    clean = clean_sandbox_policy({"mode": "strict", "allowed_commands": ["  ls   -l ", ""]})
    assert clean == {
        "mode": "strict",
        "allowed_commands": ["ls -l"],
        "denied_commands": [],
        "sensitive_commands": [],
    }


@pytest.mark.parametrize(
    "value",
    [
        {"mode": "anything-goes"},
        {"allowed_commands": "ls"},
        {"unknown": 1},
        {"allowed_commands": ["@network"]},
        {"allow_terminals": "yes"},
    ],
)
def test_clean_sandbox_policy_refuses_what_the_node_would(value) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ValidationFailed) as caught:
        clean_sandbox_policy(value)
    assert caught.value.code == "invalid_input"
    assert list(caught.value.fields or {}) == ["sandbox_policy"]


def test_clean_sandbox_policy_refuses_a_non_object() -> None:
    with pytest.raises(ValidationFailed) as caught:
        clean_sandbox_policy("strict")
    assert caught.value.fields == {"sandbox_policy": ["Must be an object."]}
