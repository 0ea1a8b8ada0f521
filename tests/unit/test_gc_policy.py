"""QuietCollector: full collections at quiet moments, automatic ones turned off meanwhile."""

from __future__ import annotations

import gc
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tui import gc_policy
from tui.core import startup_gc
from tui.gc_policy import NO_AUTOMATIC_FULL, QuietCollector


class Timers:
    """Records set_interval instead of running it."""

    def __init__(self) -> None:
        self.intervals: list[tuple[float, Callable[[], None]]] = []

    def set_interval(self, interval: float, callback: Callable[[], None]) -> object:
        self.intervals.append((interval, callback))
        return None


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[float]]:
    now = [1000.0]
    monkeypatch.setattr(gc_policy.time, "monotonic", lambda: now[0])
    before = gc.get_threshold()
    yield now
    gc.set_threshold(*before)
    gc.unfreeze()


def test_full_collections_wait_for_quiet_or_the_deadline(clock: list[float],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    last_activity = [clock[0]]
    timers = Timers()
    collector = QuietCollector(timers, lambda: last_activity[0])
    first, second, _ = gc.get_threshold()
    collector.start()
    assert gc.get_threshold() == (first, second, NO_AUTOMATIC_FULL)
    assert timers.intervals and timers.intervals[0][0] == gc_policy.CHECK_INTERVAL
    monkeypatch.setattr(gc_policy.gc, "get_count", lambda: (0, 0, 5))  # survivors pending

    clock[0] += 0.5
    last_activity[0] = clock[0]  # output (or a key) just now: busy
    collector.check()
    assert collector.collections == 0
    clock[0] += gc_policy.QUIET + 0.1  # a quiet second
    collector.check()
    assert collector.collections == 1
    for _ in range(int(gc_policy.MAX_DEFER / 0.5) + 1):  # endless output: the deadline wins
        clock[0] += 0.5
        last_activity[0] = clock[0]
        collector.check()
    assert collector.collections == 2
    collector.stop()
    assert gc.get_threshold() == (first, second, gc.get_threshold()[2])
    assert gc.get_threshold()[2] != NO_AUTOMATIC_FULL


def test_stop_undoes_the_freeze_and_the_thresholds() -> None:
    """What start froze is collectable again once the console stops."""
    before = gc.get_threshold()
    assert gc.get_freeze_count() == 0
    timers = Timers()
    collector = QuietCollector(timers, lambda: 0.0)
    kept = [object() for _ in range(100)]
    collector.start()
    assert gc.get_freeze_count() >= len(kept)
    assert gc.get_threshold()[2] == NO_AUTOMATIC_FULL
    collector.stop()
    assert gc.get_freeze_count() == 0
    assert gc.get_threshold() == before
    collector.stop()  # twice is harmless
    assert gc.get_threshold() == before



def test_start_up_holds_collections_until_the_first_frame() -> None:
    """``hardway`` turns automatic collections off while it starts and the app turns them
    back on at its first frame, with what exists frozen (no walk of it all at once); a
    collector someone else turned off stays off."""
    assert gc.isenabled()
    try:
        startup_gc.hold_until_first_frame()
        assert not gc.isenabled()
        made = [[] for _ in range(100)]  # what the start-up made: frozen, never walked
        startup_gc.first_frame_shown()
        assert gc.isenabled()
        assert gc.get_freeze_count() >= len(made)
        startup_gc.first_frame_shown()  # a second frame changes nothing
        assert gc.isenabled()
        gc.disable()
        startup_gc.hold_until_first_frame()
        startup_gc.first_frame_shown()
        assert not gc.isenabled()
    finally:
        gc.unfreeze()
        gc.enable()


def test_start_up_hold_ends_with_hardway_even_without_a_frame(tmp_path: Path) -> None:
    """`hardway -i FILE` that fails before the app draws (no inventory there) leaves the
    collector on: the hold ends with ``main`` whatever happened."""
    from tui.cli import main

    assert gc.isenabled()
    try:
        assert main(["-i", str(tmp_path / "missing.toml")]) != 0
        assert gc.isenabled()
    finally:
        gc.enable()
