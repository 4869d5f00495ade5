"""App sweeps run by the mesh's sweeper: registered once, each run even when another fails."""

from __future__ import annotations

import pytest

from cortex import sweeps


def test_registered_sweeps_run_and_a_failure_stays_in_its_own_sweep(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(sweeps, "_sweeps", {})
    ran: list[str] = []

    def broken() -> int:
        ran.append("broken")
        raise RuntimeError("boom")

    def counted() -> int:
        ran.append("counted")
        return 3

    sweeps.sweep_register("a.broken", broken)
    sweeps.sweep_register("b.counted", counted)
    sweeps.sweep_register("b.counted", counted)  # the same sweep again: no change
    with pytest.raises(ValueError, match="b.counted"):
        sweeps.sweep_register("b.counted", broken)
    assert sweeps.sweeps_run() == {"a.broken": None, "b.counted": 3}
    assert ran == ["broken", "counted"]


def test_sessions_register_the_stale_turn_reaper() -> None:
    from sessions_app.services import turns_reap_stale

    assert sweeps._sweeps["sessions.turns_reap_stale"] is turns_reap_stale
