"""A lab host's journal: what its services printed and what its supervisor did.

Entries are kept in memory (a bounded ring per host) and printed in journalctl's
``short`` format: ``Apr 01 10:00:00 controller-0 kube-apiserver[1234]: message``.
``journalctl -f`` waits on :meth:`Journal.wait`.
"""

from __future__ import annotations

import asyncio
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

CAPACITY = 20000
"""Entries kept per host (the oldest are dropped first)."""

SYSTEMD = "systemd"


@dataclass(frozen=True)
class Entry:
    """One journal line.

    Attributes:
        seq: position in the host's journal (increasing).
        time: wall-clock time (seconds since the epoch).
        unit: the unit it belongs to (``kube-apiserver.service``) or None.
        ident: the syslog identifier (``kube-apiserver``, ``systemd``).
        pid: the process that logged it (1 for systemd itself).
        message: the text, without the trailing newline.
    """

    seq: int
    time: float
    unit: str | None
    ident: str
    pid: int
    message: str


class Journal:
    """The journal of one lab host.

    Args:
        hostname: printed in every line.
        capacity: entries kept.
    """

    def __init__(self, hostname: str, capacity: int = CAPACITY) -> None:
        self.hostname = hostname
        self._entries: deque[Entry] = deque(maxlen=capacity)
        self._seq = 0
        self._waiters: set[asyncio.Event] = set()

    def append(self, unit: str | None, ident: str, pid: int, message: str) -> Entry:
        """Add a line and wake every follower."""
        self._seq += 1
        entry = Entry(self._seq, time.time(), unit, ident, pid, message)
        self._entries.append(entry)
        for waiter in self._waiters:
            waiter.set()
        return entry

    def systemd(self, unit: str | None, message: str) -> Entry:
        """A line from systemd itself (``systemd[1]: ...``)."""
        return self.append(unit, SYSTEMD, 1, message)

    def entries(self, units: Iterable[str] | None = None, *, after: int = 0) -> list[Entry]:
        """Entries (of ``units`` when given) with ``seq > after``, oldest first."""
        wanted = set(units) if units is not None else None
        return [e for e in self._entries
                if e.seq > after and (wanted is None or e.unit in wanted)]

    @property
    def last_seq(self) -> int:
        """The sequence number of the newest entry (0 when empty)."""
        return self._seq

    async def wait(self, after: int, timeout: float | None = None) -> bool:
        """Wait until an entry newer than ``after`` exists; False on timeout."""
        if self._seq > after:
            return True
        event = asyncio.Event()
        self._waiters.add(event)
        try:
            await asyncio.wait_for(event.wait(), timeout)
        except TimeoutError:
            return False
        finally:
            self._waiters.discard(event)
        return True

    def format(self, entry: Entry, output: str = "short") -> str:
        """One entry as journalctl prints it (``short``, ``cat`` or ``short-iso``)."""
        if output == "cat":
            return entry.message
        if output == "short-iso":
            stamp = time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(entry.time))
        else:
            stamp = time.strftime("%b %d %H:%M:%S", time.localtime(entry.time))
        return f"{stamp} {self.hostname} {entry.ident}[{entry.pid}]: {entry.message}"
