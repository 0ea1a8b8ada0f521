"""Clock skew between controllers, measured over SSH (etcd warns above 1 s).

Each host runs ``date +%s.%N``; its offset from this machine is its answer minus the
midpoint of the round trip.  Differences between hosts beyond :data:`TOLERANCE` become a
:class:`~tui.core.etcd.diagnose.Diagnosis` (``clock-skew``).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from tui.core.etcd.diagnose import Diagnosis, Problem
from tui.core.fleet.fleet import Fleet

TOLERANCE = 1.0
"""Seconds of difference etcd's prober tolerates between peers."""


@dataclass(frozen=True)
class ClockReading:
    """One host's clock against this machine's.

    Attributes:
        host: inventory name.
        offset: seconds the host is ahead of this machine (negative: behind).
        uncertainty: half the round trip (the reading is offset +- this).
    """

    host: str
    offset: float
    uncertainty: float


async def read_clocks(fleet: Fleet, names: list[str], timeout: float = 10.0
                      ) -> dict[str, ClockReading]:
    """Read every host's clock at once (hosts that cannot answer are left out)."""

    async def one(name: str) -> ClockReading | None:
        before = time.time()
        result = (await fleet.run([name], "date +%s.%N", timeout=timeout))[name]
        after = time.time()
        try:
            remote = float(result.stdout.strip())
        except ValueError:
            return None
        return ClockReading(name, remote - (before + after) / 2, (after - before) / 2)

    found = await asyncio.gather(*(one(n) for n in names))
    return {r.host: r for r in found if r is not None}


def skew_diagnoses(readings: dict[str, ClockReading], tolerance: float = TOLERANCE
                   ) -> list[Diagnosis]:
    """A diagnosis for every host whose clock differs from the others' median by more
    than ``tolerance`` (beyond what the round trip can explain)."""
    if len(readings) < 2:
        return []
    offsets = sorted(r.offset for r in readings.values())
    median = offsets[len(offsets) // 2]
    out = []
    for reading in readings.values():
        drift = reading.offset - median
        if abs(drift) - reading.uncertainty > tolerance:
            side = "ahead of" if drift > 0 else "behind"
            out.append(Diagnosis(
                Problem.CLOCK_SKEW, reading.host,
                f"{reading.host}'s clock is {abs(drift):.1f} s {side} the other controllers' "
                "(etcd warns above 1 s; leases and elections misbehave)",
                f"synchronise the clocks (chrony or ntpd on every controller; check "
                f"`timedatectl` on {reading.host})",
                f"date +%s.%N on {reading.host}: offset {reading.offset:+.3f} s from this "
                f"machine (+-{reading.uncertainty:.3f} s)", reading.host))
    return out


__all__ = ["TOLERANCE", "ClockReading", "read_clocks", "skew_diagnoses"]
