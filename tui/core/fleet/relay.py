"""Console shells whose SSH connections live in a child process, off the app's interpreter.

A flood of output (``seq 1 1000000`` on three hosts) costs seconds of CPU in asyncssh
(packet decryption and parsing).  In the app's process that work competes with the UI
loop for the GIL: every keystroke and frame waited for it.  :class:`ShellRelay` starts
``python -m tui.core.fleet.relayentry`` (see ``relayhost``) which owns the console's SSH
connections and forwards each PTY's raw output in batches, flow-controlled.

In the app, each console shell is an ordinary :class:`~tui.core.fleet.shell.Shell` on
the UI loop -- the same prompt tracking, events and audit as anywhere -- whose host
connection and channel are proxies (:class:`RelayHostConnection`, :class:`RelayChannel`)
speaking the frames of :mod:`tui.core.fleet.relaywire`.  Output arrives as the relay's
batches; keystrokes are written to the relay's pipe at once.

:class:`RelayFleet` is the :class:`~tui.core.console.shells.ShellFleet` the console is
given: states, connects and reconnects are the app fleet's; ``open_shell`` is the relay's.
The relay trusts the host keys the app trusts (same files, strict, plus the keys accepted
for this session, sent with every connect); it never asks.  When the relay process ends,
every shell opened through it is marked lost with the reason, and the next shell starts a
new relay.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable
from typing import IO, TYPE_CHECKING, Any, Protocol, cast

from tui.core.audit import AuditLog
from tui.core.fleet import relaywire as wire
from tui.core.fleet.errors import ChannelRefused, HostUnavailable
from tui.core.fleet.events import ConnState, StateChanged
from tui.core.fleet.relaylaunch import (
    RelayError,
    RelayProcess,
    RelaySpec,
    discard_early,
    launch,
)
from tui.core.fleet.shell import READY_TIMEOUT, ChannelLost, Shell, open_shell
from tui.core.inventory.model import Host

if TYPE_CHECKING:  # neither asyncssh nor the app fleet loads with the relay's shells
    import asyncssh

    from tui.core.fleet.fleet import Fleet

log = logging.getLogger("hardway.fleet.relay")

START_TIMEOUT = 30.0
"""Seconds the relay process may take to start (Python and asyncssh imports)."""
STOP_WAIT = 5.0
YIELD_SIZE = 64 * 1024
"""After handling output this large the reader lets the loop run other work (keys, frames)
before the next frame."""
__all__ = ["BuiltFleet", "FleetSource", "RelayError", "RelayFleet", "ShellRelay"]


def _quietly(task: asyncio.Future[None]) -> None:
    """Mark a background start's failure as seen (the next shell reports it)."""
    if not task.cancelled():
        task.exception()


class FleetSource(Protocol):
    """What the relay and :class:`RelayFleet` need of the app's fleet, answerable before
    that fleet is built (building it loads asyncssh, ~0.2 s the console's first shells
    need not wait for): :class:`BuiltFleet` wraps a fleet that exists; the workbench
    gives one that builds its fleet off the UI loop on first use."""

    audit: AuditLog | None

    def host(self, name: str) -> Host:
        """The host called ``name`` (UserError if the fleet has none)."""
        ...

    def endpoint(self, name: str) -> str:
        """``address:port`` dialled for ``name``, for messages."""
        ...

    def relay_spec(self) -> RelaySpec:
        """The specification the relay builds its own fleet from."""
        ...

    def session_keys(self) -> list[tuple[str, int, str]]:
        """Host keys accepted for this session (host, port, OpenSSH text)."""
        ...

    def built(self) -> Fleet | None:
        """The fleet, if it exists yet."""
        ...

    async def load(self) -> Fleet:
        """The fleet, built now if need be."""
        ...

    def subscribe(self, callback: Callable[[StateChanged], None]) -> Callable[[], None]:
        """Follow the fleet's StateChanged events (from when it is built)."""
        ...


class BuiltFleet:
    """A :class:`FleetSource` over a fleet that exists."""

    def __init__(self, fleet: Fleet) -> None:
        self.fleet = fleet
        self.audit = fleet.audit

    def host(self, name: str) -> Host:
        """The fleet's host called ``name``."""
        return self.fleet.host(name)

    def endpoint(self, name: str) -> str:
        """The fleet's endpoint of ``name``."""
        return self.fleet.endpoint(name)

    def relay_spec(self) -> RelaySpec:
        """The fleet's hosts, options and host-key files."""
        return RelaySpec.of(self.fleet)

    def session_keys(self) -> list[tuple[str, int, str]]:
        """The keys the fleet's policy accepted for this session."""
        return self.fleet.policy.session_keys()

    def built(self) -> Fleet:
        """The fleet."""
        return self.fleet

    async def load(self) -> Fleet:
        """The fleet."""
        return self.fleet

    def subscribe(self, callback: Callable[[StateChanged], None]) -> Callable[[], None]:
        """The fleet's StateChanged events."""
        return self.fleet.subscribe(callback)


def as_source(fleet: Fleet | FleetSource) -> FleetSource:
    """``fleet`` as a :class:`FleetSource` (a Fleet is wrapped)."""
    if hasattr(fleet, "relay_spec"):
        return cast("FleetSource", fleet)
    return BuiltFleet(cast("Fleet", fleet))


class RelayChannel:
    """The app's handle on one shell channel in the relay (the asyncssh channel subset
    :class:`~tui.core.fleet.shell.Shell` uses)."""

    def __init__(self, relay: ShellRelay, number: int, hc: RelayHostConnection) -> None:
        self._relay = relay
        self.number = number
        self.hc = hc
        self.session: asyncssh.SSHClientSession[bytes] | None = None
        self.reply: asyncio.Future[tuple[int, bytes]] = (
            asyncio.get_running_loop().create_future())
        self.gone = False

    def write(self, data: bytes) -> None:
        """Send keystrokes to the shell."""
        if not self.gone:
            self._relay.send(wire.frame(wire.WRITE, self.number, data))

    def change_terminal_size(self, columns: int, rows: int) -> None:
        """Change the PTY's window size."""
        if not self.gone:
            self._relay.send(wire.control(wire.RESIZE, self.number, [columns, rows]))

    def close(self) -> None:
        """Close the channel (LOST follows)."""
        if not self.gone:
            self._relay.send(wire.frame(wire.CLOSE, self.number))

    def abort(self) -> None:
        """Drop the channel at once."""
        if not self.gone:
            self._relay.send(wire.frame(wire.ABORT, self.number))


class RelayConnection:
    """What :meth:`RelayHostConnection.ensure` returns: opens the PTY session."""

    def __init__(self, hc: RelayHostConnection) -> None:
        self._hc = hc

    async def create_session(self, factory: Callable[[], asyncssh.SSHClientSession[bytes]],
                             command: str | None = None, *, term_type: str,
                             term_size: tuple[int, int], window: int,
                             **_: Any) -> tuple[RelayChannel, asyncssh.SSHClientSession[bytes]]:
        """Open the shell's channel in the relay (asyncssh's signature, the parts used)."""
        channel = self._hc.channel
        if channel is None:
            raise ChannelRefused("not connected")
        session = factory()
        channel.session = session
        columns, rows = term_size
        kind, payload = await self._hc.relay.request(channel, wire.control(
            wire.OPEN, channel.number,
            {"term": term_type, "columns": columns, "rows": rows, "window": window}))
        if kind != wire.OPENED:
            raise ChannelRefused(str(wire.decode(payload)))
        return channel, session


class RelayHostConnection:
    """The host connection of one shell opened through the relay (the parts of
    :class:`~tui.core.fleet.connection.HostConnection` that Shell uses)."""

    def __init__(self, relay: ShellRelay, name: str, endpoint: str) -> None:
        self.relay = relay
        self.name = name
        self.endpoint = endpoint
        self.user = ""
        self.connection: RelayConnection | None = None
        self.channel: RelayChannel | None = None
        self._closing = False

    async def ensure(self) -> RelayConnection:
        """Have the relay connect to the host (HostUnavailable with its reason if not)."""
        relay = self.relay
        try:
            await relay.start()
        except RelayError as exc:
            raise HostUnavailable(str(exc)) from None
        channel = self.channel = relay.new_channel(self)
        kind, payload = await relay.request(channel, wire.control(
            wire.CONNECT, channel.number,
            {"host": self.name, "session_keys": relay.session_keys()}))
        if kind != wire.CONNECTED:
            raise HostUnavailable(str(wire.decode(payload)))
        info = wire.decode(payload)
        self.endpoint, self.user = str(info["endpoint"]), str(info["user"] or "")
        self.connection = RelayConnection(self)
        return self.connection


class ShellRelay:
    """The relay process (started on first use) and the channels opened through it.

    Create it on the app's loop; :meth:`stop` ends the process (its connections close).

    Args:
        fleet: the app's fleet (or a :class:`FleetSource` for it, not built yet): the relay
            builds the same fleet (hosts, options, host-key files) and trusts the keys
            this fleet's policy accepted for the session.
        early: a process started before the console was built (``Workbench.warm_relay``),
            used by the first start instead of a new one.
    """

    def __init__(self, fleet: Fleet | FleetSource,
                 early: asyncio.Future[RelayProcess] | None = None) -> None:
        self._fleet = as_source(fleet)
        self._early = early
        self._process: asyncio.subprocess.Process | None = None
        self._starting: asyncio.Task[None] | None = None
        self._reader: asyncio.Task[None] | None = None
        self._channels: dict[int, RelayChannel] = {}
        self._next = 1
        self._stopped = False
        self._stderr: IO[bytes] | None = None

    @property
    def running(self) -> bool:
        """True while the relay process runs."""
        return self._process is not None and self._process.returncode is None

    async def start(self) -> None:
        """Start the relay process unless it runs (RelayError when it cannot)."""
        if self._stopped:
            raise RelayError("the console is closing")
        if self.running and self._reader is not None and not self._reader.done():
            return
        await asyncio.shield(self._begin())

    def _begin(self) -> asyncio.Task[None]:
        """The start under way, or a new one."""
        if self._starting is None or self._starting.done():
            self._starting = asyncio.ensure_future(self._spawn())
        return self._starting

    async def _spawn(self) -> None:
        if self._stderr is not None:  # a previous relay's
            self._stderr.close()
        early, self._early = self._early, None
        spec = self._fleet.relay_spec()
        started = await early if early is not None else await launch()
        if started.spec is not None and started.spec != spec:  # warmed for another fleet
            started.discard()
            await started.process.wait()
            started = await launch()
        process, self._stderr = started.process, started.stderr
        assert process.stdin is not None and process.stdout is not None
        if started.spec is None:
            started.init(spec)
        try:
            got = await asyncio.wait_for(wire.read_frame(process.stdout), START_TIMEOUT)
        except TimeoutError:
            got = None
        if got is None or got[0] != wire.READY:
            with contextlib.suppress(ProcessLookupError):
                process.kill()
            await process.wait()
            raise RelayError("the console's SSH relay did not start: " + self._complaint())
        self._process = process
        self._reader = asyncio.ensure_future(self._read(process))

    def prestart(self) -> None:
        """Start the relay in the background now (its interpreter and imports take about
        half a second), so that it is up by the time the first shell opens.  A failure
        is not raised here: the first shell reports it."""
        if not self._stopped:
            self._begin().add_done_callback(_quietly)

    def _complaint(self) -> str:
        """The last line the relay wrote to stderr (or a placeholder)."""
        stream = self._stderr
        if stream is None:
            return "no message"
        with contextlib.suppress(OSError):
            stream.seek(0)
            lines = stream.read().decode(errors="replace").strip().splitlines()
            if lines:
                return lines[-1][-300:]
        return "no message"

    def new_channel(self, hc: RelayHostConnection) -> RelayChannel:
        """A channel number for ``hc``'s shell."""
        channel = RelayChannel(self, self._next, hc)
        self._next += 1
        self._channels[channel.number] = channel
        return channel

    def session_keys(self) -> list[tuple[str, int, str]]:
        """Host keys the user accepted for this session in the app (OpenSSH text)."""
        return self._fleet.session_keys()

    def send(self, data: bytes) -> None:
        """Write frames to the relay (dropped when it is not running)."""
        process = self._process
        if process is not None and process.stdin is not None and process.returncode is None:
            with contextlib.suppress(ConnectionError, RuntimeError):
                process.stdin.write(data)

    async def request(self, channel: RelayChannel, data: bytes) -> tuple[int, bytes]:
        """Send a CONNECT or OPEN frame and wait for its answer."""
        channel.reply = asyncio.get_running_loop().create_future()
        self.send(data)
        if not self.running:
            self._forget(channel)
            return wire.UNAVAILABLE, wire.encode("the console's SSH relay is not running")
        return await channel.reply

    def _forget(self, channel: RelayChannel) -> None:
        channel.gone = True
        self._channels.pop(channel.number, None)

    async def _read(self, process: asyncio.subprocess.Process) -> None:
        """Dispatch the relay's frames until it ends; then every channel is lost."""
        assert process.stdout is not None
        reason = "the console's SSH relay ended"
        try:
            while (got := await wire.read_frame(process.stdout)) is not None:
                kind, number, payload = got
                channel = self._channels.get(number)
                if channel is None:
                    continue
                if kind == wire.DATA:
                    session = channel.session
                    if session is not None:
                        session.data_received(payload, None)
                    self.send(wire.control(wire.ACK, number, len(payload)))
                    if len(payload) >= YIELD_SIZE:
                        await asyncio.sleep(0)
                elif kind in (wire.CONNECTED, wire.OPENED):
                    if not channel.reply.done():
                        channel.reply.set_result((kind, payload))
                elif kind in (wire.UNAVAILABLE, wire.FAILED):
                    self._forget(channel)
                    if not channel.reply.done():
                        channel.reply.set_result((kind, payload))
                elif kind == wire.EXIT:
                    self._exit(channel, wire.decode(payload))
                elif kind == wire.LOST:
                    self._lost(channel, wire.decode(payload))
        except (ValueError, OSError) as exc:
            reason = f"the console's SSH relay failed: {exc}"
        finally:
            if not self._stopped:
                complaint = self._complaint()
                if complaint != "no message":
                    reason += f" ({complaint})"
                log.warning("%s", reason)
            for channel in list(self._channels.values()):
                if not channel.reply.done():
                    channel.reply.set_result((wire.UNAVAILABLE, wire.encode(reason)))
                self._lost(channel, {"error": None if self._stopped else reason,
                                     "closing": self._stopped})

    @staticmethod
    def _exit(channel: RelayChannel, how: list[Any]) -> None:
        session = channel.session
        if session is None:
            return
        if how[0] == "status":
            session.exit_status_received(int(how[1]))
        else:
            session.exit_signal_received(str(how[1]), False, "", "")

    def _lost(self, channel: RelayChannel, info: dict[str, Any]) -> None:
        self._forget(channel)
        channel.hc._closing = bool(info.get("closing"))
        session = channel.session
        if session is not None:
            error = info.get("error")
            if not error:
                session.connection_lost(None)
            elif str(error).strip().rstrip(".").lower() == "connection lost":
                session.connection_lost(ConnectionError(error))  # nothing more to say
            else:
                session.connection_lost(ChannelLost(error))

    async def open_shell(self, name: str, audit: AuditLog | None = None, *,
                         columns: int = 80, rows: int = 24) -> Shell:
        """Open ``name``'s shell through the relay (never raises for remote problems;
        check ``state`` and ``reason`` as for :func:`~tui.core.fleet.shell.open_shell`)."""
        hc = RelayHostConnection(self, name, self._fleet.endpoint(name))
        return await open_shell(hc, self._fleet.host(name),  # type: ignore[arg-type]
                                columns=columns, rows=rows, ready_timeout=READY_TIMEOUT,
                                audit=audit)

    async def drop(self, name: str) -> None:
        """Close the relay's connection to ``name`` (the next shell connects anew)."""
        if self.running:
            self.send(wire.control(wire.DROP, 0, name))

    async def stop(self) -> None:
        """End the relay: its connections close, then the process exits."""
        if self._stopped:
            return
        self._stopped = True
        early, self._early = self._early, None
        if early is not None:  # started early, never used
            await discard_early(early)
        starting = self._starting
        if starting is not None and not starting.done():  # a start still under way
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(starting), START_TIMEOUT)
        process = self._process
        if process is not None and process.stdin is not None:
            with contextlib.suppress(OSError, RuntimeError):
                process.stdin.close()
            try:
                await asyncio.wait_for(process.wait(), STOP_WAIT)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
        if self._reader is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(self._reader, STOP_WAIT)
        if self._stderr is not None:
            self._stderr.close()


class RelayFleet:
    """The console's fleet: the app fleet's states, the relay's shells.

    The app fleet is not needed to open the shells: until it is built (by :meth:`connect`,
    off the UI loop, or by anyone asking the workbench for it) a host is IDLE, or
    CONNECTING while a connect waits for the fleet to load.
    """

    separate_shell_connections = True
    """The shells do not use the app fleet's connections: a failure of one of those does
    not end a shell (the shell reports its own loss)."""

    def __init__(self, fleet: Fleet | FleetSource, relay: ShellRelay) -> None:
        self._fleet = as_source(fleet)
        self.relay = relay
        self.audit = self._fleet.audit
        self._loading: list[set[str] | None] = []
        """The hosts of each connect waiting for the fleet to load (None: every host)."""

    def state(self, name: str) -> ConnState:
        """Connection state of ``name`` (the app fleet's)."""
        fleet = self._fleet.built()
        if fleet is not None:
            return fleet.state(name)
        self._fleet.host(name)  # UserError for an unknown host, as the fleet says it
        waiting = any(names is None or name in names for names in self._loading)
        return ConnState.CONNECTING if waiting else ConnState.IDLE

    def reason(self, name: str) -> str:
        """Why ``name`` is FAILED (the app fleet's)."""
        fleet = self._fleet.built()
        return fleet.reason(name) if fleet is not None else ""

    def subscribe(self, callback: Callable[[StateChanged], None]) -> Callable[[], None]:
        """Follow the app fleet's StateChanged events."""
        return self._fleet.subscribe(callback)

    async def connect(self, names: Iterable[str] | None = None) -> dict[str, ConnState]:
        """Connect the app fleet to ``names`` (loading it first if need be)."""
        selected = None if names is None else list(names)
        waiting = None if selected is None else set(selected)
        self._loading.append(waiting)
        try:
            fleet = await self._fleet.load()
        finally:
            self._loading.remove(waiting)
        return await fleet.connect(selected)

    async def reconnect(self, name: str) -> ConnState:
        """Reconnect ``name`` on the app fleet and drop the relay's connection to it."""
        fleet = await self._fleet.load()
        state = await fleet.reconnect(name)
        await self.relay.drop(name)
        return state

    async def open_shell(self, name: str, *, columns: int = 80, rows: int = 24) -> Shell:
        """Open ``name``'s shell through the relay."""
        self._fleet.host(name)  # UserError for an unknown host, on this loop
        return await self.relay.open_shell(name, self.audit, columns=columns, rows=rows)
