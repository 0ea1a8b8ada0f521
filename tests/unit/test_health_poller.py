"""The poller: rounds, stragglers, timeouts, events and rise/fall over rounds.

The probes here are scripted coroutines (the poller's own logic is under test; the
network probes are tested against real servers elsewhere).  No test asserts a duration:
slow probes wait on events the test controls.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from tui.core.health.model import Kind, Outcome, Probe, Status
from tui.core.health.poller import (
    HealthEvent,
    Poller,
    ProbeUpdated,
    RoundFinished,
    RoundStarted,
    StateChanged,
)
from tui.core.health.report import Verdict
from tui.core.health.states import State


class Script:
    """A probe body answering from a list of booleans (the last one repeats)."""

    def __init__(self, answers: list[bool]) -> None:
        self.answers = answers
        self.calls = 0
        self.running = 0
        self.most_at_once = 0

    async def __call__(self) -> Outcome:
        self.running += 1
        self.most_at_once = max(self.most_at_once, self.running)
        try:
            await asyncio.sleep(0)
            passed = self.answers[min(self.calls, len(self.answers) - 1)]
            self.calls += 1
            return Outcome.ok("fine", 0.001) if passed else Outcome.fail("refused")
        finally:
            self.running -= 1


def probe(row: str, kind: Kind, check: Callable[[], object], timeout: float = 5.0) -> Probe:
    return Probe(f"{row}/{kind.value}", row, kind, f"{row} {kind.value}", timeout,
                 check)  # type: ignore[arg-type]


async def test_rise_and_fall_over_rounds_with_events() -> None:
    etcd = Script([True, False, False, False, True, True])
    ready = Script([True])
    poller = Poller([probe("c0", Kind.ETCD_HEALTH, etcd), probe("c0", Kind.READYZ, ready)],
                    interval=0.01, rise=2, fall=3)
    events: list[HealthEvent] = []
    poller.subscribe(events.append)
    states = []
    for _ in range(6):
        report = await poller.run_round(wait_all=True)
        states.append(poller.cells["c0/etcd"].machine.state)
    assert states == [State.UP, State.UP, State.UP, State.DOWN, State.DOWN, State.UP]
    changes = [e for e in events if isinstance(e, StateChanged)]
    assert sorted((c.key, c.transition.after.value) for c in changes[:2]) == [
        ("c0/etcd", "up"), ("c0/readyz", "up")]
    assert [(c.key, c.transition.after) for c in changes[2:]] == [
        ("c0/etcd", State.DOWN), ("c0/etcd", State.UP)]
    assert changes[2].transition.reason == "refused"
    kinds = [type(e) for e in events]
    assert kinds[0] is RoundStarted and kinds[-1] is RoundFinished
    assert kinds.count(RoundStarted) == kinds.count(RoundFinished) == 6
    assert sum(1 for e in events if isinstance(e, ProbeUpdated)) == 12
    assert report.verdict is Verdict.HEALTHY
    assert len(poller.cells["c0/etcd"].history.samples()) == 6


async def test_a_slow_probe_does_not_hold_the_round_and_never_runs_twice() -> None:
    gate = asyncio.Event()
    slow_calls = 0

    async def slow() -> Outcome:
        nonlocal slow_calls
        slow_calls += 1
        await gate.wait()
        return Outcome.ok("late")

    fast = Script([True])
    poller = Poller([probe("c1", Kind.LIVEZ, slow), probe("c0", Kind.LIVEZ, fast)],
                    interval=0.01, straggler_wait=0.02)
    updates: list[ProbeUpdated] = []
    poller.subscribe(lambda e: updates.append(e) if isinstance(e, ProbeUpdated) else None)
    first = await poller.run_round()
    second = await poller.run_round()
    assert fast.calls == 2 and slow_calls == 1  # not launched again while running
    slow_cell = next(c for c in second.cells if c.key == "c1/livez")
    assert slow_cell.in_flight and slow_cell.outcome is None
    assert next(c for c in first.cells if c.key == "c0/livez").state is State.UP
    gate.set()
    for _ in range(100):
        if any(u.cell.key == "c1/livez" for u in updates):
            break
        await asyncio.sleep(0.01)
    late = [u for u in updates if u.cell.key == "c1/livez"]
    assert late and late[0].round == 1 and late[0].cell.state is State.UP
    await poller.run_round()
    assert slow_calls == 2 and fast.most_at_once == 1
    await poller.stop()


async def test_timeouts_and_exceptions_are_failed_results() -> None:
    async def hangs() -> Outcome:
        await asyncio.Event().wait()
        raise AssertionError

    async def broken() -> Outcome:
        raise RuntimeError("boom")

    poller = Poller([probe("c0", Kind.NGINX, hangs, timeout=0.05),
                     probe("c0", Kind.SCHEDULER, broken)], interval=0.01)
    report = await poller.run_round(wait_all=True)
    by_kind = {c.kind: c for c in report.cells}
    nginx = by_kind[Kind.NGINX].outcome
    assert nginx is not None and nginx.status is Status.FAIL
    assert nginx.detail == "no answer from c0 nginx within 0.05 s"
    scheduler = by_kind[Kind.SCHEDULER].outcome
    assert scheduler is not None and "boom" in scheduler.detail
    assert report.verdict is Verdict.DEGRADED


async def test_a_failing_listener_does_not_stop_the_others() -> None:
    poller = Poller([probe("c0", Kind.LIVEZ, Script([True]))], interval=0.01)
    seen: list[HealthEvent] = []

    def bad(event: HealthEvent) -> None:
        raise RuntimeError("view bug")

    poller.subscribe(bad)
    unsubscribe = poller.subscribe(seen.append)
    await poller.run_round()
    assert any(isinstance(e, RoundFinished) for e in seen)
    unsubscribe()
    count = len(seen)
    await poller.run_round()
    assert len(seen) == count


async def test_run_counts_rounds_and_stop_ends_a_running_loop() -> None:
    script = Script([True])
    poller = Poller([probe("c0", Kind.LIVEZ, script)], interval=0.01)
    report = await poller.run(rounds=3)
    assert report is not None and report.round == 3 and script.calls == 3
    task = poller.start()
    while poller.round < 5:
        await asyncio.sleep(0.01)
    await poller.stop()
    assert task.done()
    rounds = poller.round
    await asyncio.sleep(0.05)
    assert poller.round == rounds


def test_probe_keys_must_be_unique() -> None:
    same = [probe("c0", Kind.LIVEZ, Script([True])), probe("c0", Kind.LIVEZ, Script([True]))]
    with pytest.raises(ValueError):
        Poller(same)


async def test_at_most_concurrency_runs_at_once_and_timeouts_start_with_the_run() -> None:
    running = 0
    most = 0

    async def busy() -> Outcome:
        nonlocal running, most
        running += 1
        most = max(most, running)
        await asyncio.sleep(0.02)
        running -= 1
        return Outcome.ok("done")

    probes = [probe(f"c{i}", Kind.LIVEZ, busy, timeout=0.05) for i in range(12)]
    poller = Poller(probes, interval=0.01, concurrency=3)
    report = await poller.run_round(wait_all=True)
    assert most == 3
    # 12 runs of 20 ms in 4 waves: the last wave waited longer than its 50 ms timeout,
    # but the timeout only counts its own run
    assert all(c.outcome is not None and c.outcome.status is Status.OK for c in report.cells)
