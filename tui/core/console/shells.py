"""What the console needs from a host's shell and from the fleet that opens shells.

The console is written against these protocols, so it works with
:class:`tui.core.fleet.shell.Shell` and :class:`tui.core.fleet.fleet.Fleet` without
depending on how they are built.  Shell events are the dataclasses of
:mod:`tui.core.fleet.shell`: ``ShellOutput``, ``CommandStarted``, ``CommandFinished``
and ``ShellClosed``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Protocol

from tui.core.fleet.events import ConnState, StateChanged


class ConsoleShell(Protocol):
    """A persistent interactive shell on one host."""

    @property
    def host(self) -> str:
        """The host's inventory name."""
        ...

    @property
    def state(self) -> str:
        """``opening``, ``open``, ``closed`` or ``failed``."""
        ...

    @property
    def reason(self) -> str:
        """Why the shell is closed or failed."""
        ...

    @property
    def busy(self) -> bool:
        """True while a command runs in the foreground."""
        ...

    def subscribe(self, callback: Callable[[Any], None]) -> Callable[[], None]:
        """Call ``callback`` with every shell event; returns an unsubscribe function."""
        ...

    def write(self, data: str) -> Any:
        """Send raw input (keystrokes) to the shell."""
        ...

    def send_line(self, line: str) -> Any:
        """Send one line of input followed by Enter."""
        ...

    def interrupt(self) -> Any:
        """Interrupt the foreground command (^C)."""
        ...

    def resize(self, columns: int, rows: int) -> Any:
        """Follow the pane's size (window-change)."""
        ...

    def close(self) -> Any:
        """Close the shell."""
        ...


class ShellFleet(Protocol):
    """The part of :class:`~tui.core.fleet.fleet.Fleet` the console uses.

    A fleet may also say ``separate_shell_connections = True`` (the relay's
    :class:`~tui.core.fleet.relay.RelayFleet`): its shells do not ride on the connections
    whose states it reports, so a failed connection does not end a shell.  Without the
    attribute, a failed connection ends that host's shell.
    """

    def state(self, name: str) -> ConnState:
        """Connection state of ``name``."""
        ...

    def reason(self, name: str) -> str:
        """Why ``name`` is FAILED (empty otherwise)."""
        ...

    def subscribe(self, callback: Callable[[StateChanged], None]) -> Callable[[], None]:
        """Call ``callback`` with every StateChanged event."""
        ...

    def connect(self, names: Iterable[str] | None = None) -> Awaitable[dict[str, ConnState]]:
        """Connect to ``names`` (default all); failures become states."""
        ...

    def reconnect(self, name: str) -> Awaitable[ConnState]:
        """Drop and reopen ``name``'s connection now."""
        ...

    def open_shell(self, name: str, *, columns: int = 80, rows: int = 24) -> Awaitable[Any]:
        """Open a persistent interactive shell on ``name`` (a :class:`ConsoleShell`) with
        a terminal of ``columns`` x ``rows``."""
        ...
