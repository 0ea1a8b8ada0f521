"""What the console tells its views: change notices and each host's pane status."""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:  # the console's records load with the console, after the first frame
    from tui.core.console.record import Broadcast, LastExit

ChangeKind = Literal["host", "set", "broadcast", "mode"]


@dataclass(frozen=True)
class ConsoleChanged:
    """Something a view shows changed.

    Attributes:
        kind: ``host`` (a host's status), ``set`` (the broadcast set), ``broadcast`` (a
            broadcast was sent or a host finished it), ``mode`` (type-through, transcripts).
        host: the host concerned, when there is one.
        broadcast_id: the broadcast concerned, for ``broadcast``.
    """

    kind: ChangeKind
    host: str | None = None
    broadcast_id: int | None = None


class HostState(StrEnum):
    """Where one host of the console stands (its pane title shows it).

    The values are the connection states of :class:`tui.core.fleet.events.ConnState`, plus
    ``closed`` for a host whose connection is up but whose shell ended.
    """

    READY = "ready"
    """A shell is open and takes input."""
    CONNECTING = "connecting"
    """Connecting, or connected with the shell still opening."""
    IDLE = "idle"
    """Not connected yet."""
    FAILED = "failed"
    """The connection failed (the reason says why)."""
    CLOSED = "closed"
    """The shell or the connection closed."""


@dataclass(frozen=True)
class ShellResult:
    """What opening (or reopening) one host's shell came to.

    Attributes:
        host: inventory name.
        state: READY when the shell is open, else FAILED/CLOSED/...
        reason: why there is no shell (empty when READY).
    """

    host: str
    state: HostState
    reason: str = ""

    @property
    def ok(self) -> bool:
        """True when the host has an open shell."""
        return self.state is HostState.READY


ReconnectResult = ShellResult
"""What :meth:`tui.core.console.Console.reconnect` returns."""


class SubmitKind(StrEnum):
    """What a line from the broadcast bar did."""

    SET = "set"
    """``@...``: the broadcast set changed."""
    BROADCAST = "broadcast"
    """A command went to the set's hosts."""
    BLANK = "blank"
    """An empty line: Enter went to every host of the set."""


@dataclass(frozen=True)
class SubmitResult:
    """The result of :meth:`tui.core.console.Console.submit`.

    Attributes:
        kind: what the line did.
        message: one line for the user (``sent to controller-[0-2] (3)``).
        skipped: host -> why it did not get the line as a command (not connected, busy).
        waiting: selected hosts without a shell (for a set change).
        broadcast: the broadcast record (BROADCAST only).
    """

    kind: SubmitKind
    message: str
    skipped: dict[str, str] = field(default_factory=dict)
    waiting: tuple[str, ...] = ()
    broadcast: Broadcast | None = None

    @property
    def worth_telling(self) -> bool:
        """True when the bar's own display does not already say it all: the set changed,
        or some host did not get the line as a command."""
        return self.kind is SubmitKind.SET or bool(self.skipped) or bool(self.waiting)


@dataclass(frozen=True)
class HostStatus:
    """Everything a pane title shows about one host.

    Attributes:
        host: inventory name.
        address: internal address.
        state: where the host stands (a :class:`HostState`).
        reason: why the host is failed or closed.
        in_set: selected in the broadcast set (receives input while its shell is open).
        last_exit: how the last command ended (None before the first one).
        running: a command is running in the foreground.
        transcript: the transcript file being written, if any.
        retry: the next automatic reconnect of a host whose connection dropped (its
            number and the seconds it waits; None: none scheduled).
    """

    host: str
    address: str
    state: HostState
    reason: str
    in_set: bool
    last_exit: LastExit | None
    running: bool
    transcript: Path | None
    retry: tuple[int, float] | None = None
