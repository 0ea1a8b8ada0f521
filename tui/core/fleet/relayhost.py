"""The shell relay process: the console's SSH connections, outside the app's process.

Run as ``python -m tui.core.fleet.relayhost`` by :class:`~tui.core.fleet.relay.ShellRelay`,
with frames (:mod:`tui.core.fleet.relaywire`) on stdin and stdout.  It owns one
:class:`~tui.core.fleet.fleet.Fleet` built from the app's specification and, per
channel, a PTY session whose raw output it forwards:

* batched: at most every :data:`FLUSH_INTERVAL` per channel, or :data:`FLOOD_INTERVAL`
  once a delivery was larger than :data:`FLOOD_SIZE` (the first output after a quiet
  spell, such as an echo, goes at once);
* flow-controlled: no more than :data:`PENDING_LIMIT` (:data:`FLOOD_PENDING` while
  flooding) bytes sent and not yet acknowledged by the app, plus what is buffered here;
  beyond that it stops reading the SSH channel, so SSH flow control holds the host back;
* responsive: input written into a flooding channel (a key typed into a busy pane) puts
  it back to the normal pace and limit for :data:`TYPED_WINDOW`, so the echo does not
  queue behind a megabyte of output.

Host keys are checked with the app's known_hosts files and record file in strict mode,
plus the keys the user accepted for this session in the app (sent with each CONNECT):
the relay never asks and never records.  Secrets never pass through it: keys are read
from the same files or ssh-agent as the app's own connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import os
import pickle
import sys
from typing import Any

import asyncssh

from tui.core.fleet import relaywire as wire
from tui.core.fleet.connection import HostConnection, HostUnavailable
from tui.core.fleet.events import ConnState
from tui.core.fleet.fleet import Fleet
from tui.core.fleet.hostkeys import HostKeyPolicy
from tui.core.fleet.relaylaunch import RelaySpec

log = logging.getLogger("hardway.fleet.relay")

FLUSH_INTERVAL = 0.01
"""Seconds between two deliveries of one channel's output (at most)."""
FLOOD_SIZE = 64 * 1024
"""A delivery this large means the host is flooding (``seq 1 1000000``, a big ``cat``)..."""
FLOOD_INTERVAL = 0.1
"""...and the next one waits this long, with up to FLOOD_PENDING bytes in flight: fewer,
larger pieces cost the app less per line (a Terminal fed more lines than its scrollback
holds skips the ones that would scroll out), which leaves its loop free for keystrokes and
the other panes.  Nobody reads a flood 100 times a second."""
PENDING_LIMIT = 128 * 1024
"""Bytes sent to the app and not yet acknowledged, plus buffered here, before the relay
stops reading the channel (normal output)."""
FLOOD_PENDING = 1024 * 1024
"""The same limit while the channel floods."""
TYPED_WINDOW = 0.5
"""For this long after input written into a flooding channel (the user typing into a
busy pane), the channel keeps the normal pace and limit: its echo, or the reaction to a
``q``, then waits behind at most PENDING_LIMIT of output rather than FLOOD_PENDING."""


class _Channel:
    """One shell channel: its SSH channel, the output buffered for the app, the credit."""

    def __init__(self, relay: Relay, number: int) -> None:
        self.relay = relay
        self.number = number
        self.hc: HostConnection | None = None
        self.chan: asyncssh.SSHClientChannel[bytes] | None = None
        self.opened = False
        self.closing = False
        self.buffer: list[bytes] = []
        self.buffered = 0
        self.unacked = 0
        self.paused = False
        self.flooding = False
        self.scheduled = False
        self.next_flush = 0.0
        self.typed = float("-inf")

    @property
    def batching(self) -> bool:
        """Deliver in flood-sized pieces: the channel floods and nobody is typing into it."""
        return self.flooding and asyncio.get_running_loop().time() - self.typed > TYPED_WINDOW

    @property
    def limit(self) -> int:
        return FLOOD_PENDING if self.batching else PENDING_LIMIT

    def write(self, data: bytes) -> None:
        """Input for the host; typed into a flood, it makes the channel answer sooner."""
        if self.chan is None:
            return
        if self.flooding:
            loop = asyncio.get_running_loop()
            self.typed = now = loop.time()
            if self.next_flush > now + FLUSH_INTERVAL:  # a flood-sized wait is pending
                self.next_flush = now + FLUSH_INTERVAL
                if self.scheduled:  # (the old call finds the buffer empty, or sends more)
                    loop.call_later(FLUSH_INTERVAL, self.flush)
        with contextlib.suppress(asyncssh.Error, OSError):
            self.chan.write(data)

    def received(self, data: bytes) -> None:
        """Output from the host: buffer it, stop reading when the app is too far behind."""
        self.buffer.append(data)
        self.buffered += len(data)
        if not self.paused and self.buffered + self.unacked > self.limit and self.chan:
            self.paused = True
            self.chan.pause_reading()
        self.arm()

    def arm(self) -> None:
        if self.scheduled or not self.opened or not self.buffer:
            return
        self.scheduled = True
        loop = asyncio.get_running_loop()
        delay = self.next_flush - loop.time()
        if delay > 0:
            loop.call_later(delay, self.flush)
        else:
            loop.call_soon(self.flush)

    def flush(self, *, force: bool = False) -> None:
        """Send the buffered output (unless the app has not caught up yet)."""
        self.scheduled = False
        if not self.buffer or (self.unacked > self.limit and not force):
            return  # the app's ACK re-arms
        data = b"".join(self.buffer)
        self.buffer, self.buffered = [], 0
        self.unacked += len(data)
        self.flooding = len(data) > FLOOD_SIZE
        interval = FLOOD_INTERVAL if self.batching else FLUSH_INTERVAL
        self.next_flush = asyncio.get_running_loop().time() + interval
        self.relay.send(wire.frame(wire.DATA, self.number, data))

    def acked(self, count: int) -> None:
        """The app has shown ``count`` more bytes."""
        self.unacked = max(0, self.unacked - count)
        if self.paused and self.buffered + self.unacked <= self.limit // 2 and self.chan:
            self.paused = False
            with contextlib.suppress(asyncssh.Error, OSError):
                self.chan.resume_reading()
        self.arm()


class _Session(asyncssh.SSHClientSession[bytes]):
    def __init__(self, channel: _Channel) -> None:
        self._channel = channel

    def data_received(self, data: bytes, datatype: asyncssh.DataType) -> None:
        self._channel.received(data)

    def exit_status_received(self, status: int) -> None:
        channel = self._channel
        channel.relay.send(wire.control(wire.EXIT, channel.number, ["status", status]))

    def exit_signal_received(self, signal: str, core_dumped: bool, msg: str,
                             lang: str) -> None:
        channel = self._channel
        channel.relay.send(wire.control(wire.EXIT, channel.number, ["signal", signal]))

    def connection_lost(self, exc: Exception | None) -> None:
        self._channel.relay.lost(self._channel, exc)


class Relay:
    """Serves the app's requests (frames on ``reader``) and writes frames to ``writer``."""

    def __init__(self, spec: RelaySpec, writer: asyncio.StreamWriter) -> None:
        policy = HostKeyPolicy("strict", spec.record_file, spec.known_hosts,
                               user_files=spec.user_files)
        self.fleet = Fleet(spec.hosts, jump_hosts=spec.jumps, host_keys=policy,
                           **spec.options)
        self._writer = writer
        self._channels: dict[int, _Channel] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._preconnects: dict[str, asyncio.Task[None]] = {}

    def preconnect(self, names: list[str] | tuple[str, ...]) -> None:
        """Connect ``names`` now, before the app asks (its CONNECT then finds the
        connection made or under way); a failure here is retried by that CONNECT."""
        for name in names:
            task = asyncio.ensure_future(self._preconnect(name))
            self._preconnects[name] = task
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _preconnect(self, name: str) -> None:
        with contextlib.suppress(Exception):
            await self.fleet._connection(name).ensure()

    def send(self, data: bytes) -> None:
        """Write a frame to the app (buffered by the transport)."""
        if not self._writer.is_closing():
            self._writer.write(data)

    def lost(self, channel: _Channel, exc: Exception | None) -> None:
        """The channel is gone: its last output, then LOST."""
        channel.flush(force=True)
        hc = channel.hc
        closing = channel.closing or bool(hc is not None and hc._closing)
        error = None if exc is None else (str(exc) or type(exc).__name__)
        self.send(wire.control(wire.LOST, channel.number, {"error": error,
                                                            "closing": closing}))
        self._channels.pop(channel.number, None)

    async def serve(self, reader: asyncio.StreamReader) -> None:
        """Handle frames until the app closes the pipe, then close every connection."""
        self.send(wire.frame(wire.READY, 0))
        while (got := await wire.read_frame(reader)) is not None:
            kind, number, payload = got
            self._handle(kind, number, payload)
        for channel in list(self._channels.values()):
            channel.closing = True
            if channel.chan is not None:
                channel.chan.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(self.fleet.close(), 5)

    def _spawn(self, coro: Any) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _handle(self, kind: int, number: int, payload: bytes) -> None:
        channel = self._channels.get(number)
        if kind == wire.WRITE:
            if channel is not None:
                channel.write(payload)
        elif kind == wire.ACK:
            if channel is not None:
                channel.acked(int(wire.decode(payload)))
        elif kind == wire.RESIZE:
            if channel is not None and channel.chan is not None:
                columns, rows = wire.decode(payload)
                with contextlib.suppress(asyncssh.Error, OSError):
                    channel.chan.change_terminal_size(int(columns), int(rows))
        elif kind == wire.CONNECT:
            channel = self._channels[number] = _Channel(self, number)
            self._spawn(self._connect(channel, wire.decode(payload)))
        elif kind == wire.OPEN:
            if channel is not None:
                self._spawn(self._open(channel, wire.decode(payload)))
        elif kind in (wire.CLOSE, wire.ABORT):
            if channel is not None and channel.chan is not None:
                channel.closing = True
                channel.chan.close() if kind == wire.CLOSE else channel.chan.abort()
            elif channel is not None:  # never opened: nothing to wait for
                self._channels.pop(number, None)
                self.send(wire.control(wire.LOST, number, {"error": None, "closing": True}))
        elif kind == wire.DROP:
            self._spawn(self._drop(str(wire.decode(payload))))

    async def _connect(self, channel: _Channel, request: dict[str, Any]) -> None:
        name = str(request["host"])
        early = self._preconnects.pop(name, None)
        if early is not None:
            await asyncio.wait([early])  # made, or failed: then the CONNECT tries again
        policy = self.fleet.policy
        for host, port, text in request.get("session_keys", []):
            key = asyncssh.import_public_key(text)
            known = policy._session.get((host, port), [])
            if all(k.public_data != key.public_data for k in known):
                policy.trust_once(host, int(port), key)
        try:
            hc = self.fleet._connection(name)
            channel.hc = hc
            await hc.ensure(force=hc.connection is None)
        except HostUnavailable as exc:
            self._channels.pop(channel.number, None)
            self.send(wire.control(wire.UNAVAILABLE, channel.number, exc.reason))
            return
        except Exception as exc:  # an unknown host name, a bad option: say so, keep serving
            self._channels.pop(channel.number, None)
            self.send(wire.control(wire.UNAVAILABLE, channel.number, str(exc)))
            return
        self.send(wire.control(wire.CONNECTED, channel.number,
                               {"endpoint": hc.endpoint, "user": hc.user}))

    async def _open(self, channel: _Channel, request: dict[str, Any]) -> None:
        hc = channel.hc
        conn = hc.connection if hc is not None else None
        try:
            if conn is None:
                raise asyncssh.ChannelOpenError(asyncssh.OPEN_CONNECT_FAILED,
                                                "the connection is gone")
            chan, _ = await conn.create_session(
                lambda: _Session(channel), None, encoding=None, request_pty="force",
                term_type=str(request["term"]),
                term_size=(int(request["columns"]), int(request["rows"])),
                window=int(request["window"]))
        except (asyncssh.Error, OSError) as exc:
            self._channels.pop(channel.number, None)
            reason = getattr(exc, "reason", None) or str(exc) or type(exc).__name__
            self.send(wire.control(wire.FAILED, channel.number, reason))
            return
        channel.chan = chan
        self.send(wire.frame(wire.OPENED, channel.number))
        channel.opened = True
        channel.arm()

    async def _drop(self, name: str) -> None:
        with contextlib.suppress(Exception):
            await self.fleet._connection(name).close(state=ConnState.IDLE)


async def _main() -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=wire.MAX_PAYLOAD)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    transport, protocol = await loop.connect_write_pipe(
        asyncio.streams.FlowControlMixin, os.fdopen(os.dup(sys.stdout.fileno()), "wb"))
    writer = asyncio.StreamWriter(transport, protocol, None, loop)
    got = await wire.read_frame(reader)
    if got is None or got[0] != wire.INIT:
        raise SystemExit("hardway shell relay: expected INIT from the app")
    spec = pickle.loads(got[2])  # our parent's, on a private pipe
    relay = Relay(spec, writer)
    relay.preconnect(spec.preconnect)
    # Modules, the fleet and its options live as long as the relay: keep full garbage
    # collections (which pause every channel) from walking them again and again.
    gc.collect()
    gc.freeze()
    await relay.serve(reader)
    transport.close()


def main() -> None:
    """Entry point of ``python -m tui.core.fleet.relayhost``."""
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr,
                        format="hardway shell relay: %(message)s")
    with contextlib.suppress(KeyboardInterrupt, BrokenPipeError):
        asyncio.run(_main())


if __name__ == "__main__":
    main()
