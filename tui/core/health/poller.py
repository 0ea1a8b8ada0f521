"""The poller: rounds of every probe, rise/fall per probe, latency history, typed events.

Rounds never overlap: the next starts ``interval`` seconds after the previous one ended
(dolphie's rule).  Every probe of a round starts at once (at most ``concurrency`` runs
at a time) under its own timeout, and its result is applied (and announced) the moment
it arrives, so a fast host is never kept waiting by a slow one.  A round ends when all
its runs are done, or at the latest ``straggler_wait`` seconds (default: the interval)
after it started: a run still going then keeps going and reports when it finishes, and
the next round leaves that probe alone until it has (a probe never runs twice at once).

Views subscribe one listener type, :data:`HealthListener`, and receive
:class:`RoundStarted`, :class:`ProbeUpdated`, :class:`StateChanged` and
:class:`RoundFinished` (with the :class:`~tui.core.health.report.RoundReport`).

Usage::

    poller = Poller(probes, interval=2.0, rise=2, fall=3)
    unsubscribe = poller.subscribe(view.on_health_event)
    report = await poller.run_round()          # one round (``hardway health --once``)
    task = poller.start()                      # rounds until ``await poller.stop()``
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from tui.core.health.history import LatencyHistory
from tui.core.health.model import Kind, Outcome, Probe, run_probe
from tui.core.health.report import CellSnapshot, RoundReport, judge, summarize
from tui.core.health.states import RiseFall, State, Transition

__all__ = ["Cell", "HealthEvent", "HealthListener", "Poller", "ProbeUpdated", "RoundFinished",
           "RoundStarted", "StateChanged"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RoundStarted:
    """Round ``round`` began at wall-clock ``at``."""

    round: int
    at: float


@dataclass(frozen=True)
class ProbeUpdated:
    """A probe reported (in round ``round``); ``cell`` is how it stands now."""

    round: int
    cell: CellSnapshot


@dataclass(frozen=True)
class StateChanged:
    """A probe went UP or DOWN (rise/fall); ``transition`` has the time and reason."""

    key: str
    row: str
    kind: Kind
    transition: Transition


@dataclass(frozen=True)
class RoundFinished:
    """A round ended; ``report`` holds every cell, the verdict and the summary."""

    report: RoundReport


HealthEvent = RoundStarted | ProbeUpdated | StateChanged | RoundFinished
HealthListener = Callable[[HealthEvent], None]


class Cell:
    """One probe's live state: rise/fall, last result and latency history."""

    def __init__(self, probe: Probe, machine: RiseFall, history: LatencyHistory) -> None:
        self.probe = probe
        self.machine = machine
        self.history = history
        self.last: Outcome | None = None
        self.runs = 0
        self.in_flight = False

    def apply(self, outcome: Outcome) -> Transition | None:
        """Account for one result."""
        self.last = outcome
        self.runs += 1
        self.history.add(outcome.at, outcome.latency if outcome.status.passed else None,
                         outcome.status)
        return self.machine.feed(outcome)

    def snapshot(self) -> CellSnapshot:
        """How this probe stands now (immutable)."""
        probe = self.probe
        transitions = self.machine.transitions
        return CellSnapshot(probe.key, probe.row, probe.kind, probe.target,
                            self.machine.state, self.machine.counter, self.last,
                            self.in_flight, self.runs, transitions[-1] if transitions else None)


class Poller:
    """Runs probes in rounds and keeps each one's state.

    Args:
        probes: the probes (keys unique), in grid order.
        interval: seconds between the end of a round and the start of the next.
        rise, fall: HAProxy's counters (consecutive passes to go UP, failures to go DOWN).
        history_window: seconds of latency history per probe.
        straggler_wait: seconds a round waits for its slowest run (default ``interval``).
        concurrency: runs at once at most (the others wait their turn; a probe's timeout
            starts when its run does, so a long queue is not mistaken for a dead host).
        clock: wall clock for results and history.
    """

    def __init__(self, probes: Sequence[Probe], *, interval: float = 2.0, rise: int = 2,
                 fall: int = 3, history_window: float = 600.0,
                 straggler_wait: float | None = None, concurrency: int = 64,
                 clock: Callable[[], float] = time.time) -> None:
        if interval <= 0:
            raise ValueError("interval must be positive")
        keys = [p.key for p in probes]
        if len(set(keys)) != len(keys):
            raise ValueError("probe keys must be unique")
        self.interval = interval
        self.straggler_wait = interval if straggler_wait is None else straggler_wait
        self.clock = clock
        self.cells: dict[str, Cell] = {
            p.key: Cell(p, RiseFall(rise, fall), LatencyHistory(history_window, interval,
                                                                  clock))
            for p in probes}
        self.round = 0
        self.last_report: RoundReport | None = None
        self._listeners: list[HealthListener] = []
        self._running: dict[str, asyncio.Task[None]] = {}
        self._loop_task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._slots = asyncio.Semaphore(max(1, concurrency))

    # -- listeners ----------------------------------------------------------------------

    def subscribe(self, listener: HealthListener) -> Callable[[], None]:
        """Call ``listener`` with every event; returns an unsubscribe function."""
        self._listeners.append(listener)

        def unsubscribe() -> None:
            with contextlib.suppress(ValueError):
                self._listeners.remove(listener)

        return unsubscribe

    def _emit(self, event: HealthEvent) -> None:
        for listener in list(self._listeners):
            try:
                listener(event)
            except Exception:
                log.exception("health listener failed")

    def retarget(self, probes: Sequence[Probe]) -> int:
        """Give cells the probe of the same key (same row and kind, a new target); keys
        the grid does not have are left out. Returns how many cells changed."""
        changed = 0
        for probe in probes:
            cell = self.cells.get(probe.key)
            if cell is not None:
                cell.probe = probe
                changed += 1
        return changed

    # -- state --------------------------------------------------------------------------

    def snapshot(self) -> tuple[CellSnapshot, ...]:
        """Every cell as it stands, in grid order."""
        return tuple(cell.snapshot() for cell in self.cells.values())

    def rows_up(self, kind: Kind) -> list[str]:
        """Rows whose probe of ``kind`` is UP now."""
        return [c.probe.row for c in self.cells.values()
                if c.probe.kind is kind and c.machine.state is State.UP]

    def rows_not_down(self, kind: Kind) -> list[str]:
        """Rows whose probe of ``kind`` is not DOWN (UP, or not answered yet)."""
        return [c.probe.row for c in self.cells.values()
                if c.probe.kind is kind and c.machine.state is not State.DOWN]

    # -- rounds -------------------------------------------------------------------------

    async def run_round(self, *, wait_all: bool = False) -> RoundReport:
        """Run one round and return its report.

        Args:
            wait_all: wait for every run (each is bounded by its probe's timeout) instead
                of at most ``straggler_wait`` seconds (``--once`` wants every answer).
        """
        self.round += 1
        number = self.round
        started_wall, started = self.clock(), time.monotonic()
        self._emit(RoundStarted(number, started_wall))
        launched = []
        for key, cell in self.cells.items():
            if key in self._running:
                continue  # still running from an earlier round
            cell.in_flight = True
            task = asyncio.ensure_future(self._run(cell, number))
            self._running[key] = task
            launched.append(task)
        if launched:
            await asyncio.wait(launched, timeout=None if wait_all else self.straggler_wait)
        cells = self.snapshot()
        verdict, reasons = judge(cells)
        report = RoundReport(number, started_wall, time.monotonic() - started, cells, verdict,
                             reasons, summarize(cells))
        self.last_report = report
        self._emit(RoundFinished(report))
        return report

    async def _run(self, cell: Cell, number: int) -> None:
        try:
            async with self._slots:
                outcome = await run_probe(cell.probe, self.clock)
            transition = cell.apply(outcome)
        finally:
            cell.in_flight = False
            self._running.pop(cell.probe.key, None)
        self._emit(ProbeUpdated(number, cell.snapshot()))
        if transition is not None:
            probe = cell.probe
            self._emit(StateChanged(probe.key, probe.row, probe.kind, transition))

    async def run(self, rounds: int | None = None) -> RoundReport | None:
        """Run rounds (``rounds`` of them, or until :meth:`stop`); returns the last report.

        The next round starts ``interval`` seconds after one ends; :meth:`poke` starts
        it at once.
        """
        done = 0
        while rounds is None or done < rounds:
            await self.run_round()
            done += 1
            if rounds is not None and done >= rounds:
                break
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self.interval)
        return self.last_report

    def poke(self) -> None:
        """Start the next round now instead of at the end of the interval."""
        self._wake.set()

    def start(self) -> asyncio.Task[RoundReport | None]:
        """Run rounds in a task until :meth:`stop`."""
        if self._loop_task is not None and not self._loop_task.done():
            raise RuntimeError("the poller is already running")
        task = asyncio.ensure_future(self.run())
        self._loop_task = task  # type: ignore[assignment]
        return task

    async def stop(self) -> None:
        """Stop the rounds and cancel runs still going."""
        tasks = [t for t in (self._loop_task, *self._running.values()) if t is not None]
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        self._loop_task = None
        self._running.clear()
        for cell in self.cells.values():
            cell.in_flight = False
