"""Events a Fleet emits while it connects to hosts and runs commands.

Views (the CLI printer, Textual widgets) consume these; nothing here does I/O.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Literal


class ConnState(StrEnum):
    """Connection state of one host."""

    IDLE = "idle"
    CONNECTING = "connecting"
    READY = "ready"
    FAILED = "failed"
    CLOSED = "closed"


@dataclass(frozen=True)
class StateChanged:
    """A host's connection changed state; ``reason`` explains FAILED."""

    host: str
    state: ConnState
    reason: str = ""


@dataclass(frozen=True)
class Output:
    """A chunk of decoded output from a command on ``host``."""

    host: str
    stream: Literal["stdout", "stderr"]
    data: str


@dataclass(frozen=True)
class Exited:
    """A command finished on ``host``.

    Attributes:
        status: remote exit status (None when killed by a signal or timed out).
        signal: signal name when the remote process died of one.
        duration: seconds from start to exit.
        timed_out: the per-command timeout fired and the remote process was killed.
        cancelled: the caller cancelled the command and the remote process was killed.
    """

    host: str
    status: int | None
    duration: float
    signal: str | None = None
    timed_out: bool = False
    cancelled: bool = False


@dataclass(frozen=True)
class Failed:
    """``host`` could not run the command at all (connect failure, host key refused...)."""

    host: str
    reason: str


Event = StateChanged | Output | Exited | Failed
