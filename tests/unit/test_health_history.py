"""The latency history of a probe: a bounded ring over the last ten minutes."""

from __future__ import annotations

import pytest

from tui.core.health.history import LatencyHistory
from tui.core.health.model import Status


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_ten_minutes_at_two_seconds_is_a_fixed_ring() -> None:
    clock = Clock()
    history = LatencyHistory(600.0, 2.0, clock)
    assert history.capacity == 301
    sizes = (len(history._at), len(history._latency), len(history._status))
    for i in range(5000):
        clock.now += 2.0
        history.add(clock.now, 0.001 * (i % 7), Status.OK)
    assert (len(history._at), len(history._latency), len(history._status)) == sizes
    samples = history.samples()
    assert len(samples) == 301
    assert samples[-1].at == clock.now
    assert [s.at for s in samples] == sorted(s.at for s in samples)
    assert samples[0].at >= clock.now - 600.0


def test_old_samples_fall_out_of_the_window_even_when_their_slots_are_kept() -> None:
    clock = Clock()
    history = LatencyHistory(60.0, 2.0, clock)
    history.add(clock.now, 0.010, Status.OK)
    history.add(clock.now + 1, None, Status.FAIL)
    clock.now += 30
    assert history.latencies() == [0.010, None]
    assert history.failed_fraction() == 0.5
    clock.now += 60
    assert history.samples() == [] and len(history) == 0
    assert history.failed_fraction() == 0.0


def test_statuses_and_missing_latencies_round_trip() -> None:
    clock = Clock()
    history = LatencyHistory(10.0, 1.0, clock)
    history.add(clock.now, 0.5, Status.WARN)
    history.add(clock.now, None, Status.FAIL)
    assert [(s.latency, s.status) for s in history.samples()] == [
        (0.5, Status.WARN), (None, Status.FAIL)]


def test_bad_sizes_are_refused() -> None:
    with pytest.raises(ValueError):
        LatencyHistory(0.0)
