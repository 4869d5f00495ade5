"""mesh/services/terminal_local.py: the process-local registry of node streams and watching
sockets that lets a keystroke and its echo skip the channel layer."""

from __future__ import annotations

from typing import Any

import pytest
from channels.layers import get_channel_layer

from mesh.services import terminal_local, terminals


@pytest.fixture(autouse=True)
def _empty_registry():  # type: ignore[no-untyped-def]
    assert terminal_local.counts() == {"streams": 0, "watchers": 0}
    yield
    assert terminal_local.counts() == {"streams": 0, "watchers": 0}


def test_a_stream_takes_input_while_attached_and_nothing_after() -> None:
    got: list[dict[str, Any]] = []

    def sink(message: dict[str, Any]) -> bool:
        got.append(message)
        return True

    assert terminal_local.deliver_input("n1", {"data": "a"}) is False  # nobody here
    terminal_local.stream_attach("n1", sink)
    try:
        assert terminal_local.deliver_input("n1", {"data": "b"}) is True
        assert terminal_local.deliver_input("other", {"data": "c"}) is False
        # The open's doorbell goes to this process's stream first (keystrokes queue behind it).
        terminals.terminal_open_ring(node_id="n1")
    finally:
        terminal_local.stream_detach("n1", sink)
        terminal_local.stream_detach("n1", sink)  # twice: harmless
    assert terminal_local.deliver_input("n1", {"data": "d"}) is False
    assert [m.get("data") or m["reason"] for m in got] == ["b", terminals.RING_TERMINAL]


def test_a_closing_stream_refuses_and_the_doorbell_goes_by_the_layer() -> None:
    def closing(message: dict[str, Any]) -> bool:
        return False

    terminal_local.stream_attach("n2", closing)
    try:
        assert terminal_local.deliver_input("n2", {"data": "x"}) is False
    finally:
        terminal_local.stream_detach("n2", closing)


def test_output_reaches_every_watching_socket_of_the_session() -> None:
    seen: list[tuple[str, int]] = []
    first = lambda frame: seen.append(("first", frame["seq"]))  # noqa: E731
    second = lambda frame: seen.append(("second", frame["seq"]))  # noqa: E731
    terminal_local.watcher_attach("s1", first)
    terminal_local.watcher_attach("s1", second)
    try:
        assert terminal_local.deliver_output("s1", {"seq": 1}) is True
        assert terminal_local.deliver_output("s2", {"seq": 2}) is False
    finally:
        terminal_local.watcher_detach("s1", first)
        terminal_local.watcher_detach("s1", second)
    assert seen == [("first", 1), ("second", 1)]
    assert terminal_local.deliver_output("s1", {"seq": 3}) is False


def test_marked_copies_are_known_as_from_here_and_the_layer_kind_is_read() -> None:
    assert terminal_local.from_here({"via": terminal_local.PROCESS_TOKEN})
    assert not terminal_local.from_here({"via": "another-process"})
    assert not terminal_local.from_here({})
    local = type(get_channel_layer()).__name__ == "InMemoryChannelLayer"
    assert terminal_local.layer_is_local() is local
