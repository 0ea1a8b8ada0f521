"""The frames between the app and its shell relay process (see :mod:`tui.core.fleet.relay`).

A frame is a 9-byte header -- kind (1 byte), channel number (4 bytes), payload length
(4 bytes), big-endian -- and the payload.  Channel 0 is the relay itself.  Control
payloads are JSON; terminal data is raw bytes.  The first frame from the app (``INIT``)
carries the fleet's specification as a pickle: the relay is the app's own child process
on a private pipe, never a network peer.
"""

from __future__ import annotations

import asyncio
import json
import struct
from typing import Any

HEADER = struct.Struct(">BII")
MAX_PAYLOAD = 64 * 1024 * 1024

# app -> relay
INIT = 1
"""Channel 0, pickled :class:`~tui.core.fleet.relayhost.RelaySpec`."""
CONNECT = 9
"""JSON ``{"host", "session_keys"}``: make sure the relay is connected to the host that the
channel's shell will run on (answered by CONNECTED or UNAVAILABLE)."""
OPEN = 2
"""JSON ``{"term", "columns", "rows", "window"}``: open the channel's PTY shell (answered
by OPENED or FAILED)."""
WRITE = 3
"""Bytes to send to the shell."""
RESIZE = 4
"""JSON ``[columns, rows]``."""
CLOSE = 5
"""Close the channel (the shell gets SIGHUP)."""
ABORT = 6
"""Drop the channel at once."""
ACK = 7
"""JSON byte count: the app has shown that much of the channel's output (flow control)."""
DROP = 8
"""Channel 0, JSON host name: close the relay's connection to that host."""

# relay -> app
CONNECTED = 26
"""JSON ``{"endpoint", "user"}``: the relay's connection to the host is up."""
UNAVAILABLE = 27
"""JSON reason (a sentence): the host cannot be reached."""
OPENED = 20
"""The shell's channel is open."""
FAILED = 21
"""JSON reason: the shell could not be opened (host unreachable, key refused...)."""
DATA = 22
"""Output of the shell (batched; see ``relayhost``)."""
EXIT = 23
"""JSON ``["status", n]`` or ``["signal", name]``: how the remote shell ended."""
LOST = 24
"""JSON ``{"error": str | null, "closing": bool}``: the channel is gone; ``closing`` when
the relay closed it on purpose (DROP, shutdown)."""
READY = 25
"""Channel 0: the relay has read INIT and serves requests."""


def frame(kind: int, channel: int, payload: bytes = b"") -> bytes:
    """One frame, ready to write."""
    return HEADER.pack(kind, channel, len(payload)) + payload


def encode(value: Any) -> bytes:
    """A control payload (JSON)."""
    return json.dumps(value).encode()


def control(kind: int, channel: int, value: Any) -> bytes:
    """A frame with a JSON payload."""
    return frame(kind, channel, encode(value))


def decode(payload: bytes) -> Any:
    """The JSON value of a control payload."""
    return json.loads(payload.decode())


async def read_frame(reader: asyncio.StreamReader) -> tuple[int, int, bytes] | None:
    """The next frame, or None at the end of the stream."""
    try:
        header = await reader.readexactly(HEADER.size)
    except asyncio.IncompleteReadError:
        return None
    kind, channel, size = HEADER.unpack(header)
    if size > MAX_PAYLOAD:
        raise ValueError(f"relay frame of {size} bytes (kind {kind}) is too large")
    try:
        payload = await reader.readexactly(size) if size else b""
    except asyncio.IncompleteReadError:
        return None
    return kind, channel, payload
