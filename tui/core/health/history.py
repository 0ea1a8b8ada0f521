"""Latency history of one probe: the last ``window`` seconds in a fixed-size ring.

Memory is bounded by construction: two ``array('d')`` of ``capacity`` slots (16 bytes a
sample) and one ``bytearray`` of statuses, allocated once.  With the defaults (10 minutes
at one sample per 2 s) that is 300 samples, under 6 KiB per probe, whatever the run time.
Samples older than ``window`` are not returned even while their slots are not reused yet
(a slower interval than planned).
"""

from __future__ import annotations

import math
import time
from array import array
from collections.abc import Callable
from dataclasses import dataclass

from tui.core.health.model import Status

__all__ = ["LatencyHistory", "Sample"]

_CODES = {Status.OK: 0, Status.WARN: 1, Status.FAIL: 2}
_STATUSES = {code: status for status, code in _CODES.items()}


@dataclass(frozen=True)
class Sample:
    """One recorded run: wall-clock time, latency in seconds (None: no answer), status."""

    at: float
    latency: float | None
    status: Status


class LatencyHistory:
    """A ring of the most recent samples within ``window`` seconds.

    Args:
        window: seconds of history kept (default 10 minutes).
        interval: the expected seconds between samples; with ``window`` it sizes the ring.
        clock: wall clock used to cut off old samples.
    """

    def __init__(self, window: float = 600.0, interval: float = 2.0,
                 clock: Callable[[], float] = time.time) -> None:
        if window <= 0 or interval <= 0:
            raise ValueError("window and interval must be positive")
        self.window = window
        self.capacity = max(1, math.ceil(window / interval)) + 1
        self._clock = clock
        self._at = array("d", bytes(8 * self.capacity))
        self._latency = array("d", bytes(8 * self.capacity))
        self._status = bytearray(self.capacity)
        self._next = 0
        self._count = 0

    def add(self, at: float, latency: float | None, status: Status) -> None:
        """Record one run (``latency`` None when there was no answer)."""
        slot = self._next
        self._at[slot] = at
        self._latency[slot] = math.nan if latency is None else latency
        self._status[slot] = _CODES[status]
        self._next = (slot + 1) % self.capacity
        self._count = min(self._count + 1, self.capacity)

    def __len__(self) -> int:
        return len(self.samples())

    def samples(self) -> list[Sample]:
        """Samples within the window, oldest first."""
        cutoff = self._clock() - self.window
        out = []
        start = (self._next - self._count) % self.capacity
        for i in range(self._count):
            slot = (start + i) % self.capacity
            at = self._at[slot]
            if at < cutoff:
                continue
            latency = self._latency[slot]
            out.append(Sample(at, None if math.isnan(latency) else latency,
                              _STATUSES[self._status[slot]]))
        return out

    def latencies(self) -> list[float | None]:
        """Latencies within the window, oldest first (None where a run failed)."""
        return [s.latency for s in self.samples()]

    def failed_fraction(self) -> float:
        """The share of runs within the window that failed (0.0 without samples)."""
        samples = self.samples()
        if not samples:
            return 0.0
        return sum(1 for s in samples if s.status is Status.FAIL) / len(samples)
