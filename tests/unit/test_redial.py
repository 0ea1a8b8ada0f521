"""Redialer: backoff, no overlapping attempts, manual takeover, close."""

from __future__ import annotations

import asyncio

from tui.core.console.redial import Redialer


class Host:
    """A host that answers from the ``up_after``-th attempt on."""

    def __init__(self, up_after: int, slow: float = 0.0) -> None:
        self.up_after = up_after
        self.slow = slow
        self.attempts = 0
        self.running = 0
        self.overlap = False

    async def attempt(self, _name: str) -> bool:
        self.running += 1
        self.overlap |= self.running > 1
        self.attempts += 1
        await asyncio.sleep(self.slow)
        self.running -= 1
        return self.attempts >= self.up_after


async def test_retries_with_backoff_until_the_host_answers() -> None:
    host = Host(up_after=3)
    seen: list[tuple[int, float] | None] = []
    redial: Redialer

    def changed(name: str) -> None:
        retry = redial.retry(name)
        seen.append((retry.attempt, retry.delay) if retry else None)

    redial = Redialer(host.attempt, changed, delays=(0.01, 0.02, 0.04))
    redial.schedule("c0")
    assert redial.retry("c0") is not None and redial.retry("c0").attempt == 1  # type: ignore[union-attr]
    redial.schedule("c0")  # already redialling: nothing more
    for _ in range(100):
        await asyncio.sleep(0.01)
        if redial.retry("c0") is None:
            break
    assert host.attempts == 3 and not host.overlap
    assert seen == [(2, 0.02), (3, 0.04), None]


async def test_the_last_delay_repeats() -> None:
    host = Host(up_after=5)
    redial = Redialer(host.attempt, lambda _n: None, delays=(0.0, 0.01))
    redial.schedule("c0")
    for _ in range(100):
        await asyncio.sleep(0.01)
        if redial.retry("c0") is None:
            break
    assert host.attempts == 5


async def test_a_manual_reconnect_drops_a_waiting_attempt() -> None:
    host = Host(up_after=99)
    redial = Redialer(host.attempt, lambda _n: None, delays=(10.0,))
    redial.schedule("c0")
    await asyncio.sleep(0)
    await asyncio.wait_for(redial.take_over("c0"), 1)
    assert host.attempts == 0 and redial.retry("c0") is None


async def test_a_manual_reconnect_waits_for_an_attempt_in_progress_then_stops() -> None:
    host = Host(up_after=99, slow=0.1)
    redial = Redialer(host.attempt, lambda _n: None, delays=(0.0, 10.0))
    redial.schedule("c0")
    await asyncio.sleep(0.02)  # the first attempt is running
    assert host.running == 1
    await asyncio.wait_for(redial.take_over("c0"), 1)
    assert host.attempts == 1 and host.running == 0 and redial.retry("c0") is None


async def test_close_stops_everything_and_refuses_new_hosts() -> None:
    host = Host(up_after=99)
    redial = Redialer(host.attempt, lambda _n: None, delays=(0.01,))
    redial.schedule("c0")
    redial.schedule("c1")
    await asyncio.sleep(0.05)
    await redial.aclose()
    attempts = host.attempts
    redial.schedule("c2")
    await asyncio.sleep(0.05)
    assert host.attempts == attempts and redial.retry("c2") is None


async def test_an_attempt_that_raises_counts_as_failed() -> None:
    calls = 0

    async def attempt(_name: str) -> bool:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise OSError("network unreachable")
        return True

    redial = Redialer(attempt, lambda _n: None, delays=(0.0,))
    redial.schedule("c0")
    for _ in range(50):
        await asyncio.sleep(0.01)
        if redial.retry("c0") is None:
            break
    assert calls == 2
