"""Turn a Fleet's event stream into what ``hardway run`` prints.

:class:`RunRecorder` accumulates the events of one command on many hosts into
:class:`~tui.core.gather.HostOutcome` values and JSON records; :class:`LivePrinter`
prints complete lines as they arrive, prefixed by the host name (a stable colour per
host on a terminal).  Both only write to the text streams they are given.
"""

from __future__ import annotations

import json
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

from tui.core.fleet.events import Event, Exited, Failed, Output
from tui.core.gather import HostOutcome

_PALETTE = (32, 33, 34, 35, 36, 92, 93, 94, 95, 96, 91, 31)
"""ANSI foreground colours for host names (red-ish ones last: they read as errors)."""

STDERR_MARK = " (stderr)"
"""Inserted after the host name in the prefix of a live stderr line."""


def host_colour(name: str) -> int:
    """The ANSI colour code of ``name``: the same on every run and every machine."""
    return _PALETTE[zlib.crc32(name.encode()) % len(_PALETTE)]


@dataclass
class _HostRecord:
    """Everything one host produced so far."""

    stdout: list[str] = field(default_factory=list)
    stderr: list[str] = field(default_factory=list)
    transcript: list[str] = field(default_factory=list)
    finished: bool = False
    status: int | None = None
    signal: str | None = None
    timed_out: bool = False
    cancelled: bool = False
    error: str | None = None
    duration: float | None = None


class RunRecorder:
    """Collect the events of one command run on several hosts.

    Args:
        hosts: the selected host names, in display order.
        clock: monotonic clock (seconds), replaceable in tests.
    """

    def __init__(self, hosts: Sequence[str], clock: Callable[[], float] = time.monotonic):
        self._clock = clock
        self._start = clock()
        self._records = {name: _HostRecord() for name in hosts}

    @property
    def hosts(self) -> list[str]:
        """Host names in the order given."""
        return list(self._records)

    def feed(self, event: Event) -> str | None:
        """Record ``event``; return the host name when it ended that host's command."""
        if isinstance(event, Output):
            record = self._record(event.host)
            (record.stdout if event.stream == "stdout" else record.stderr).append(event.data)
            record.transcript.append(event.data)
            return None
        if isinstance(event, Exited):
            record = self._record(event.host)
            record.finished = True
            record.status = event.status
            record.signal = event.signal
            record.timed_out = event.timed_out
            record.cancelled = event.cancelled
            record.duration = event.duration
            return event.host
        if isinstance(event, Failed):
            record = self._record(event.host)
            record.finished = True
            record.error = event.reason
            record.duration = self._clock() - self._start
            return event.host
        return None

    def outcome(self, host: str) -> HostOutcome:
        """The outcome of ``host`` (a host that never reported counts as cancelled)."""
        record = self._record(host)
        return HostOutcome(
            host=host,
            output="".join(record.transcript),
            status=record.status,
            signal=record.signal,
            timed_out=record.timed_out,
            cancelled=record.cancelled or not record.finished,
            error=record.error,
        )

    def outcomes(self) -> list[HostOutcome]:
        """Outcomes of every host, in the order given."""
        return [self.outcome(host) for host in self._records]

    def as_json(self, host: str) -> dict[str, Any]:
        """The ``--json`` record of ``host``."""
        record = self._record(host)
        return {
            "host": host,
            "status": record.status,
            "signal": record.signal,
            "timed_out": record.timed_out,
            "duration": None if record.duration is None else round(record.duration, 6),
            "stdout": "".join(record.stdout),
            "stderr": "".join(record.stderr),
            "error": record.error,
        }

    def json_line(self, host: str) -> str:
        """``as_json(host)`` as one line of JSON (no trailing newline)."""
        return json.dumps(self.as_json(host), ensure_ascii=False)

    def _record(self, host: str) -> _HostRecord:
        record = self._records.get(host)
        if record is None:  # a host the caller did not announce: keep it anyway
            record = self._records[host] = _HostRecord()
        return record


class LivePrinter:
    """Print output line by line as it arrives, each line prefixed by its host.

    Partial lines are held per host and stream until the newline arrives or the host's
    command ends.  Stdout lines go to ``out`` as ``controller-0: text``; stderr lines go
    to ``err`` as ``controller-0 (stderr): text``.  Prefixes are padded to the longest
    host name so the output lines up.

    Args:
        out: where stdout lines go.
        err: where stderr lines go.
        hosts: the selected host names (for the padding).
        colour: colour host names (a stable colour per host; stderr marks in red).
    """

    def __init__(self, out: TextIO, err: TextIO, hosts: Sequence[str], *, colour: bool):
        self._out = out
        self._err = err
        self._colour = colour
        self._width = max((len(h) for h in hosts), default=0)
        self._partial: dict[tuple[str, str], str] = {}
        self._prefixes: dict[tuple[str, str], str] = {}

    def feed(self, event: Event) -> None:
        """Print the complete lines ``event`` carries; flush a host that ended."""
        if isinstance(event, Output):
            key = (event.host, event.stream)
            text = self._partial.pop(key, "") + event.data
            *lines, rest = text.split("\n")
            if rest:
                self._partial[key] = rest
            if lines:
                self._write(event.host, event.stream, lines)
        elif isinstance(event, Exited | Failed):
            self.flush(event.host)

    def flush(self, host: str | None = None) -> None:
        """Print held partial lines (of ``host``, or of every host)."""
        for key in [k for k in self._partial if host is None or k[0] == host]:
            self._write(key[0], key[1], [self._partial.pop(key)])

    def _write(self, host: str, stream: str, lines: list[str]) -> None:
        prefix = self._prefix(host, stream)
        target = self._out if stream == "stdout" else self._err
        target.write("".join(f"{prefix}{line.rstrip(chr(13))}\n" for line in lines))
        target.flush()

    def _prefix(self, host: str, stream: str) -> str:
        key = (host, stream)
        prefix = self._prefixes.get(key)
        if prefix is None:
            mark = STDERR_MARK if stream == "stderr" else ""
            pad = " " * max(0, self._width - len(host))
            if self._colour:
                name = f"\x1b[{host_colour(host)}m{host}\x1b[0m"
                if mark:
                    mark = f"\x1b[31m{mark}\x1b[0m"
            else:
                name = host
            prefix = f"{name}{mark}:{pad} "
            self._prefixes[key] = prefix
        return prefix
