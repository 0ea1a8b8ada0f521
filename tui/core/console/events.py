"""What the console tells its views: change notices and each host's pane status."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from tui.core.console.record import LastExit

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


@dataclass(frozen=True)
class HostStatus:
    """Everything a pane title shows about one host.

    Attributes:
        host: inventory name.
        address: internal address.
        state: ``ready`` (shell open), ``connecting``, ``idle``, ``failed`` or ``closed``.
        reason: why the host is failed or closed.
        in_set: selected in the broadcast set (receives input while its shell is open).
        last_exit: how the last command ended (None before the first one).
        running: a command is running in the foreground.
        transcript: the transcript file being written, if any.
    """

    host: str
    address: str
    state: str
    reason: str
    in_set: bool
    last_exit: LastExit | None
    running: bool
    transcript: Path | None
