"""Reconnect hosts whose connection dropped, with backoff (a VM reboot, a network blip).

The console hands a host to :class:`Redialer` when its shell was lost (not when the user
typed ``exit``): the redialer waits 1 s, tries the console's reconnect, and on failure
waits longer (2, 4, 8, 15, then every 30 s) until the host answers, the user reconnects
by hand, or the console closes.  Attempts on one host never overlap, and a manual
reconnect takes over from a pending one instead of racing it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

log = logging.getLogger(__name__)

DELAYS = (1.0, 2.0, 4.0, 8.0, 15.0, 30.0)
"""Seconds before each attempt; the last repeats."""


@dataclass(frozen=True)
class Retry:
    """The next automatic attempt on a host.

    Attributes:
        attempt: its number (1 for the first after the loss).
        delay: seconds it waits after the previous one.
        due: ``time.monotonic()`` when it starts.
    """

    attempt: int
    delay: float
    due: float


class Redialer:
    """Automatic reconnection of lost hosts, one task per host.

    Args:
        attempt: reconnects a host; True when its shell is open again.
        changed: called with a host's name whenever its :class:`Retry` changes.
        delays: the backoff (the last value repeats; empty: never redial).
    """

    def __init__(self, attempt: Callable[[str], Awaitable[bool]],
                 changed: Callable[[str], None], delays: tuple[float, ...] = DELAYS) -> None:
        self._attempt = attempt
        self._changed = changed
        self.delays = delays
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._retries: dict[str, Retry] = {}
        self._attempting: set[str] = set()
        self._stopping: set[str] = set()
        self._closed = False

    def retry(self, name: str) -> Retry | None:
        """The pending attempt on ``name`` (None: none scheduled)."""
        return self._retries.get(name)

    def schedule(self, name: str) -> None:
        """Start redialling ``name`` (nothing when it already is, or after :meth:`aclose`)."""
        if self._closed or name in self._tasks or not self.delays:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no loop (a synchronous caller): nothing can redial
            return
        self._retries[name] = self._next(name, 0)  # known at once, before the task runs
        self._tasks[name] = loop.create_task(self._run(name), name=f"redial {name}")

    def _next(self, name: str, done: int) -> Retry:
        """The attempt after ``done`` failed ones."""
        delay = self.delays[min(done, len(self.delays) - 1)]
        return Retry(done + 1, delay, time.monotonic() + delay)

    async def take_over(self, name: str) -> None:
        """Stop redialling ``name`` for a manual reconnect: a waiting attempt is dropped,
        one in progress is awaited (never raced)."""
        task = self._tasks.get(name)
        if task is None:
            return
        self._stopping.add(name)
        try:
            if name not in self._attempting:
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        finally:
            self._stopping.discard(name)

    async def aclose(self) -> None:
        """Stop every redial (the console is closing)."""
        self._closed = True
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _run(self, name: str) -> None:
        done = 0
        try:
            while self.delays:
                retry = self._retries[name] = (self._retries.get(name) if done == 0
                                               else None) or self._next(name, done)
                if done:
                    self._changed(name)
                done += 1
                await asyncio.sleep(max(0.0, retry.due - time.monotonic()))
                self._attempting.add(name)
                try:
                    if await self._attempt(name):
                        return
                except Exception:  # an attempt that raises is one more failed attempt
                    log.exception("automatic reconnect of %s failed", name)
                finally:
                    self._attempting.discard(name)
                if name in self._stopping:
                    return
        finally:
            self._tasks.pop(name, None)
            if self._retries.pop(name, None) is not None:
                self._changed(name)
