"""The console model (Textual-free): broadcast set, history, shells, gather, transcripts.

The console screen is a thin view over :class:`Console`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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

_HOMES = {
    "BroadcastSet": "broadcast", "Console": "console", "History": "history",
    "Transcript": "transcript", "TranscriptStore": "transcript",
    "Broadcast": "record", "GatherReport": "record", "HostRow": "record", "HostRun": "record",
    "LastExit": "record",
}


def __getattr__(name: str) -> Any:
    """Load the console's parts on first use (the app draws its first frame before SSH
    and the console model are imported)."""
    module = _HOMES.get(name, "events")
    if name not in __all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{module}"), name)


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
