"""The console model (Textual-free): broadcast set, history, shells, gather, transcripts.

The console screen is a thin view over :class:`Console`.
"""

from __future__ import annotations

from tui.core.console.broadcast import BroadcastSet
from tui.core.console.console import Console
from tui.core.console.events import (
    ConsoleChanged,
    HostState,
    HostStatus,
    ReconnectResult,
    ShellResult,
    SubmitKind,
    SubmitResult,
)
from tui.core.console.history import History
from tui.core.console.record import Broadcast, GatherReport, HostRow, HostRun, LastExit
from tui.core.console.transcript import Transcript, TranscriptStore

__all__ = [
    "Broadcast",
    "BroadcastSet",
    "Console",
    "ConsoleChanged",
    "GatherReport",
    "History",
    "HostRow",
    "HostRun",
    "HostState",
    "HostStatus",
    "LastExit",
    "ReconnectResult",
    "ShellResult",
    "SubmitKind",
    "SubmitResult",
    "Transcript",
    "TranscriptStore",
]
