"""mesh/services/browser.py: the hub's checks before browser work, screenshots, closing."""

from __future__ import annotations

import base64
import hashlib
from pathlib import Path

import pytest
from django.core.files.storage import default_storage

from accounts.models import AuditEvent
from cortex.errors import NotFound, ValidationFailed
from mesh.models import Node, Task
from mesh.services.browser import (
    BrowserApprovalRequired,
    EvaluateNotAllowed,
    UrlNotAllowed,
    browser_dispatch_check,
    browser_downloads_clean,
    browser_payload_clean,
    browser_policy_of,
    browser_result_store,
    browser_screenshot_open,
    browser_session_close,
)

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


@pytest.fixture
def media(settings, tmp_path: Path) -> Path:  # type: ignore[no-untyped-def]
    settings.MEDIA_ROOT = str(tmp_path / "media")
    return tmp_path / "media"


def _node(policy: dict) -> Node:  # type: ignore[type-arg]
    return Node(node_id="b1", sandbox_policy=policy)


def test_browser_policy_of_reads_the_stored_policy_or_refuses_all() -> None:
    policy = browser_policy_of(_node({"browser": {"denied_domains": ["evil.example"]}}))
    assert policy is not None and policy.denied_domains == ("evil.example",)
    default = browser_policy_of(_node({}))
    assert default is not None and default.allow_evaluate is False
    assert browser_policy_of(_node({"mode": "nonsense"})) is None


def test_browser_payload_clean_keeps_a_valid_action_and_refuses_hub_keys() -> None:
    assert browser_payload_clean({"action": "navigate", "url": "https://example.com"}) == {
        "action": "navigate",
        "url": "https://example.com",
    }
    for bad in (
        {"action": "teleport"},
        {"action": "navigate"},
        {"action": "close", "confirmed": True},
        {"action": "close", "session": "7"},
    ):
        with pytest.raises(ValidationFailed) as caught:
            browser_payload_clean(bad)
        assert caught.value.code == "invalid_input"
        assert list(caught.value.fields or {}) == ["action"]


def test_browser_dispatch_check_applies_the_domain_policy() -> None:
    node = _node({"browser": {"denied_domains": ["evil.example"]}})
    ok = browser_dispatch_check(
        node=node, payload={"action": "navigate", "url": "https://example.com"}, confirmed=False
    )
    assert ok == {"sensitive": False}
    for url in ("https://evil.example/x", "https://a.evil.example/", "http://127.0.0.1/"):
        with pytest.raises(UrlNotAllowed) as caught:
            browser_dispatch_check(
                node=node, payload={"action": "tab_new", "url": url}, confirmed=False
            )
        assert caught.value.code == "url_not_allowed"
    with pytest.raises(UrlNotAllowed):  # an unreadable policy refuses everything
        browser_dispatch_check(
            node=_node({"mode": "x"}), payload={"action": "back"}, confirmed=True
        )


def test_browser_dispatch_check_evaluate_needs_policy_and_approval() -> None:
    script = {"action": "evaluate", "script": "1"}
    with pytest.raises(EvaluateNotAllowed) as refused:
        browser_dispatch_check(node=_node({}), payload=script, confirmed=True)
    assert refused.value.code == "evaluate_not_allowed"
    allowing = _node({"browser": {"allow_evaluate": True}})
    with pytest.raises(BrowserApprovalRequired) as unconfirmed:
        browser_dispatch_check(node=allowing, payload=script, confirmed=False)
    assert unconfirmed.value.code == "confirmation_required"
    assert "confirm" in unconfirmed.value.fields
    assert browser_dispatch_check(node=allowing, payload=script, confirmed=True) == {
        "sensitive": True
    }


@pytest.mark.django_db
def test_browser_result_store_moves_a_png_to_storage(media) -> None:  # type: ignore[no-untyped-def]
    result = browser_result_store(
        task_id="t-1", result={"title": "x", "png_base64": base64.b64encode(PNG).decode()}
    )
    assert "png_base64" not in result
    assert result["title"] == "x"
    assert result["screenshot"] == {
        "stored": True,
        "bytes": len(PNG),
        "sha256": hashlib.sha256(PNG).hexdigest(),
        "url": "/api/v1/tasks/t-1/screenshot/",
    }
    with default_storage.open("mesh/browser/t-1.png", "rb") as handle:
        assert handle.read() == PNG


@pytest.mark.parametrize(
    "encoded", ["not base64!", base64.b64encode(b"GIF89a....").decode(), 12, ""]
)
def test_browser_result_store_drops_what_is_not_a_png(media, encoded) -> None:  # type: ignore[no-untyped-def]
    result = browser_result_store(task_id="t-2", result={"png_base64": encoded})
    assert result == {"screenshot": {"stored": False, "reason": "not a PNG or too large"}}
    assert not default_storage.exists("mesh/browser/t-2.png")
    assert browser_result_store(task_id="t-2", result=["plain"]) == ["plain"]


@pytest.mark.django_db
def test_browser_screenshot_open_only_for_a_browser_task_with_one(media, make_node) -> None:  # type: ignore[no-untyped-def]
    node, _ = make_node("b2")
    task = Task.objects.create(node=node, kind="browser", payload={"action": "screenshot"})
    task.result = browser_result_store(
        task_id=task.pk, result={"png_base64": base64.b64encode(PNG).decode()}
    )
    task.save()
    with browser_screenshot_open(task=task) as handle:
        assert handle.read() == PNG
    shell = Task.objects.create(node=node, kind="shell", payload={}, result=task.result)
    none = Task.objects.create(node=node, kind="browser", payload={}, result={"ok": True})
    for other in (shell, none):
        with pytest.raises(NotFound) as caught:
            browser_screenshot_open(task=other)
        assert caught.value.code == "screenshot_missing"
    default_storage.delete(f"mesh/browser/{task.pk}.png")
    with pytest.raises(NotFound):
        browser_screenshot_open(task=task)


@pytest.mark.django_db
def test_browser_session_close_reaches_only_nodes_with_a_browser(user, make_node, grant) -> None:  # type: ignore[no-untyped-def]
    from sessions_app.models import ChatSession

    chat = ChatSession.objects.create(owner=user, title="t")
    with_browser, _ = make_node("with-browser", skill_config={"browser": True})
    switched_off, _ = make_node("switched-off", skill_config={"browser": False})
    not_granted, _ = make_node("not-granted", skill_config={"browser": True})
    for node in (with_browser, switched_off, not_granted):
        Node.objects.filter(pk=node.pk).update(capabilities={"browser": True})
        node.refresh_from_db()
    grant(user, with_browser)
    grant(user, switched_off)

    tasks = browser_session_close(
        actor=user, chat_session_id=chat.pk, nodes=[with_browser, switched_off, not_granted]
    )
    assert [t.node.node_id for t in tasks] == ["with-browser"]
    assert tasks[0].payload == {"action": "close", "session": str(chat.pk)}
    assert tasks[0].chat_session_id == chat.pk
    row = AuditEvent.objects.get(action="task.dispatch")
    assert row.source == "system"
    assert row.details["node_id"] == "with-browser"


@pytest.mark.parametrize(
    "value",
    [
        None,
        "sessions/1",
        {"folder": "sessions/1"},
        {"folder": "sessions/1", "max_bytes": 10, "extra": 1},
        {"folder": "../etc", "max_bytes": 10},
        {"folder": "/abs", "max_bytes": 10},
        {"folder": "a//b", "max_bytes": 10},
        {"folder": "sessions/1", "max_bytes": -1},
        {"folder": "sessions/1", "max_bytes": True},
        {"folder": "sessions/1", "max_bytes": 1.5},
    ],
)
def test_browser_downloads_clean_refuses_what_the_node_would(value) -> None:  # type: ignore[no-untyped-def]
    """The hub checks a downloads target with the node's own rule and refuses with a 400."""
    with pytest.raises(ValidationFailed):
        browser_downloads_clean(value)


def test_browser_downloads_clean_keeps_a_good_target() -> None:
    assert browser_downloads_clean({"folder": "sessions/7", "max_bytes": 1024}) == {
        "folder": "sessions/7",
        "max_bytes": 1024,
    }
    assert browser_downloads_clean({"folder": ".", "max_bytes": 0})["folder"] == "."
