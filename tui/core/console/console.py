"""The console controller: one shell per host, the broadcast set, broadcasts and gathers.

:class:`Console` is the model behind the console screen (the screen is a thin view):

* it opens one persistent shell per connected host through the fleet and follows each
  shell's events (output, command started/finished, closed);
* :meth:`Console.submit` takes a line from the broadcast bar: ``@...`` changes the
  :class:`BroadcastSet`, anything else is broadcast (and both go to the history);
* :meth:`Console.broadcast` substitutes ``{name}``, ``{ip}``, ``{var}`` per host and sends
  the line to every member's shell, recording a :class:`Broadcast`;
* :meth:`Console.interrupt` sends ^C to every member; in type-through mode
  :meth:`Console.keystroke` sends raw keys to every member;
* :meth:`Console.gather` groups the last broadcast's outputs (clush -b) with a diff;
* optional per-host transcripts (:meth:`Console.set_transcripts`);
* a host whose connection dropped is reconnected with backoff (:mod:`.redial`).

A host whose shell closed is excluded from sends and named in the result, never blocking
the others.  Listeners (:meth:`Console.subscribe`) get a :class:`ConsoleChanged` after
every change that a view may show.
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from tui.core.console.broadcast import BroadcastSet
from tui.core.console.complete import Completion, complete
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
from tui.core.console.record import (
    AS_INPUT,
    Broadcast,
    GatherReport,
    HostRun,
    LastExit,
    finished_output,
    gather_report,
)
from tui.core.console.redial import DELAYS, Redialer
from tui.core.console.sendfile import read_local, script_command
from tui.core.console.shells import ConsoleShell, ShellFleet
from tui.core.console.transcript import TranscriptSet, TranscriptStore
from tui.core.errors import UserError
from tui.core.events import Listeners
from tui.core.fleet.command import substitute, values_for
from tui.core.fleet.events import ConnState, StateChanged
from tui.core.fleet.shell import CommandFinished, CommandStarted, ShellClosed, ShellOutput
from tui.core.hostset import fold
from tui.core.inventory.model import Inventory

log = logging.getLogger(__name__)

_GONE = ("closed", "failed")
"""Shell states in which a shell takes no more input."""

MAX_BROADCASTS = 100
"""Broadcast records kept in memory (oldest dropped first)."""

def _utc_now() -> datetime:
    return datetime.now(UTC)


SHELLS_FIRST = 1.0
"""Seconds :meth:`Console.start` lets relayed shells open before the app's own fleet starts
to load and connect (a host that hangs delays that connect by this much at most)."""


class Console:
    """The console model (see the module docstring).

    Args:
        inventory: the cluster.
        fleet: opens shells and reports connection states (a Fleet).
        history: broadcast-bar history (default: in memory only).
        transcripts: where transcripts go (default: the XDG state dir for this cluster).
        clock: gives the current time (UTC) for broadcast records.
    """

    def __init__(self, inventory: Inventory, fleet: ShellFleet, *,
                 history: History | None = None, transcripts: TranscriptStore | None = None,
                 clock: Callable[[], datetime] = _utc_now,
                 redial: tuple[float, ...] | None = DELAYS) -> None:
        """Args:
            inventory: the hosts.
            fleet: opens their shells.
            history: the bar's history (default: a new one redacting as the audit log).
            transcripts: where transcripts go.
            clock: the time broadcasts are stamped with.
            redial: backoff of the automatic reconnect of dropped hosts (None: off).
        """
        self.inventory = inventory
        self.fleet = fleet
        audit = getattr(fleet, "audit", None)
        redact = audit.redact if audit is not None else None  # the session's one redactor
        self.history = history or History(redact=redact)
        self._clock = clock
        self.hosts = [host.name for host in inventory.hosts]
        self.broadcast_set = BroadcastSet(self.hosts, inventory.groups())
        self._shells: dict[str, ConsoleShell] = {}
        self._unsubscribe: dict[str, Callable[[], None]] = {}
        self._closed: dict[str, str] = {}
        self._last_exit: dict[str, LastExit] = {}
        self._sending: HostRun | None = None
        self._inflight: dict[str, deque[HostRun | None]] = {n: deque() for n in self.hosts}
        self._sizes: dict[str, tuple[int, int]] = {}
        self._broadcasts: dict[int, Broadcast] = {}
        self._next_id = 1
        self._transcripts = TranscriptSet(inventory.name, transcripts, redact=redact)
        self._type_through = False
        self._partial: set[str] = set()  # hosts whose shell line holds keys typed by hand
        self._listeners: Listeners[ConsoleChanged] = Listeners("console")
        self._tasks: set[asyncio.Future[Any]] = set()
        self._reconnecting: set[str] = set()
        self._redial = Redialer(self._redial_once, lambda n: self._emit(ConsoleChanged("host", n)),
                                redial or ())
        self.broadcast_set.subscribe(lambda _: self._emit(ConsoleChanged("set")))
        self._fleet_unsubscribe = fleet.subscribe(self._on_state)

    # -- shells -----------------------------------------------------------------------------

    async def start(self) -> dict[str, ShellResult]:
        """Connect every host and open a shell on each one that connected.

        A fleet whose shells have connections of their own (the relay, connecting since
        the app started) opens the shells first and connects once they are open, or after
        :data:`SHELLS_FIRST` seconds (loading the fleet, asyncssh with it, would otherwise
        share the interpreter with the shells' start: ~80 ms later on the 3-host lab); a
        shell refused meanwhile (say, a host key the user has yet to accept) is tried
        again once its host is connected.

        Returns:
            host -> its shell's result, for every connected host (never raises per host).
        """
        if not getattr(self.fleet, "separate_shell_connections", False):
            await self.fleet.connect(self.hosts)
            return await self.open([n for n in self.hosts
                                    if self.fleet.state(n) == ConnState.READY])
        # the fleet's connect (loading SSH into this process first) waits for the shells,
        # up to SHELLS_FIRST seconds: the two would share the UI loop's interpreter
        opening = asyncio.ensure_future(self.open(self.hosts, quiet=True))
        connecting: asyncio.Future[dict[str, ConnState]] | None = None
        try:
            await asyncio.wait([opening], timeout=SHELLS_FIRST)
            connecting = asyncio.ensure_future(self.fleet.connect(self.hosts))
            opened = await opening
            await connecting
        finally:
            opening.cancel()
            if connecting is not None:
                connecting.cancel()
        again = [n for n in self.hosts
                 if n not in opened and self.fleet.state(n) == ConnState.READY]
        return {**opened, **await self.open(again)}

    async def open(self, names: Iterable[str] | None = None, *,
                   quiet: bool = False) -> dict[str, ShellResult]:
        """Open a shell on each of ``names`` (default every host) that has none, concurrently.

        Args:
            quiet: a host whose shell does not open is left out of the result and keeps
                its state (the caller tries again).

        Returns:
            host -> READY, or the state and the reason why no shell could be opened.
        """
        selected = [n for n in (self.hosts if names is None else names) if n in self._inflight]

        async def one(name: str) -> tuple[str, ShellResult | None]:
            if name in self._shells:
                return name, ShellResult(name, HostState.READY)
            size = self._sizes.get(name)
            try:
                if size is None:
                    shell = await self.fleet.open_shell(name)
                else:  # the pane's size from the start: no SIGWINCH redraw of the prompt
                    shell = await self.fleet.open_shell(name, columns=size[0], rows=size[1])
            except (UserError, OSError, ConnectionError) as error:
                reason = str(error) or type(error).__name__
            else:
                if str(shell.state) not in _GONE:
                    pane = self._sizes.get(name)
                    if pane is not None and pane != size:  # laid out again while opening
                        shell.resize(*pane)
                    self.attach(shell)
                    return name, ShellResult(name, HostState.READY)
                reason = shell.reason or f"shell {shell.state}"
            if quiet:
                return name, None
            self._mark_closed(name, reason)
            return name, self._no_shell(name)

        return {name: result for name, result in await asyncio.gather(*(one(n) for n in selected))
                if result is not None}

    def set_size(self, name: str, columns: int, rows: int) -> None:
        """The size of ``name``'s pane: shells opened from now on start at it (a shell
        that is open follows its pane through ``resize``)."""
        if columns > 0 and rows > 0:
            self._sizes[name] = (columns, rows)

    def attach(self, shell: ConsoleShell) -> None:
        """Make ``shell`` its host's console shell (replacing a closed one)."""
        name = shell.host
        if name not in self._inflight:
            raise UserError(f"The console has no host called {name!r} "
                            f"(hosts: {', '.join(self.hosts)}).")
        self._detach(name)
        self._shells[name] = shell
        self._closed.pop(name, None)
        self._inflight[name].clear()
        self._transcripts.open(name)
        self.broadcast_set.mark_available(name, True)
        self._emit(ConsoleChanged("host", name))
        # last: the shell replays what it emitted before (a first prompt, or its closing)
        self._unsubscribe[name] = shell.subscribe(self._on_shell_event)

    def set_redial(self, delays: tuple[float, ...]) -> None:
        """The backoff of automatic reconnects from now on (empty: none)."""
        self._redial.delays = delays

    async def reconnect(self, name: str) -> ReconnectResult:
        """Reconnect ``name`` now and open a new shell (READY, or the state and reason); an
        automatic reconnect in progress finishes first, a waiting one is dropped."""
        await self._redial.take_over(name)
        return await self._reconnect(name)

    async def _redial_once(self, name: str) -> bool:
        """One automatic attempt: True when the host's shell is open again."""
        if name in self._shells:
            return True
        return (await self._reconnect(name)).ok

    async def _reconnect(self, name: str) -> ReconnectResult:
        shell = self._shells.pop(name, None)
        if shell is not None:
            self._detach(name)
            await self._close_shell(shell)
        self._reconnecting.add(name)  # shown as connecting until the attempt ends
        try:
            self._mark_closed(name, "reconnecting")
            state = await self.fleet.reconnect(name)
        finally:
            self._reconnecting.discard(name)
        if state != ConnState.READY:
            self._mark_closed(name, self.fleet.reason(name) or str(state))
            failed = HostState.FAILED if state == ConnState.FAILED else HostState.CLOSED
            return ReconnectResult(name, failed, self._closed[name])
        return (await self.open([name]))[name]

    def _no_shell(self, name: str) -> ShellResult:
        """``name`` has no shell: its state and the recorded reason."""
        return ShellResult(name, self.status(name).state, self._closed.get(name, ""))

    async def close(self) -> None:
        """Close every shell and transcript; stop following the fleet."""
        self._fleet_unsubscribe()
        await self._redial.aclose()
        shells = list(self._shells.values())
        for name in list(self._shells):
            self._detach(name)
        self._shells.clear()
        await asyncio.gather(*(self._close_shell(s) for s in shells))
        for task in list(self._tasks):
            task.cancel()
        self._transcripts.stop()

    def shell(self, name: str) -> ConsoleShell | None:
        """``name``'s open shell (None when it has none)."""
        return self._shells.get(name)

    # -- status -----------------------------------------------------------------------------

    def status(self, name: str) -> HostStatus:
        """What ``name``'s pane title shows."""
        host = self.inventory.host(name)
        if name in self._shells:
            state, reason = HostState.READY, ""
        elif name in self._reconnecting:
            state, reason = HostState.CONNECTING, ""
        else:
            fleet_state = self.fleet.state(name)
            reason = self._closed.get(name, "") or self.fleet.reason(name)
            if fleet_state == ConnState.READY:
                state = HostState.CLOSED if name in self._closed else HostState.CONNECTING
            else:
                state = HostState(str(fleet_state))
        return HostStatus(
            host=name, address=str(host.address), state=state, reason=reason,
            in_set=name in self.broadcast_set, last_exit=self._last_exit.get(name),
            running=bool(self._inflight[name]) or self._busy(name),
            transcript=self._transcripts.path(name), retry=self._retry(name))

    def _retry(self, name: str) -> tuple[int, float] | None:
        retry = self._redial.retry(name)
        return (retry.attempt, retry.delay) if retry is not None else None

    def last_exit(self, name: str) -> LastExit | None:
        """How the last command on ``name`` ended (any command, broadcast or typed)."""
        return self._last_exit.get(name)

    def _busy(self, name: str) -> bool:
        shell = self._shells.get(name)
        try:
            return bool(shell is not None and shell.busy)
        except Exception:
            return False

    # -- input ------------------------------------------------------------------------------

    def submit(self, line: str) -> SubmitResult:
        """Handle a line from the broadcast bar; the result says what it did.

        A set expression (``@...``, ``+name``, ``-name``, a bare host set; see
        :meth:`BroadcastSet.is_set_expression`) changes the broadcast set; any other line
        is broadcast.  Both are added to the history (secret lines stay in memory).

        Raises:
            UserError: a bad set expression, or no host can receive the line.
        """
        self.history.add(line)
        if self.broadcast_set.is_set_expression(line):
            message = self.broadcast_set.apply(line)
            return SubmitResult(SubmitKind.SET, message,
                                waiting=tuple(self.broadcast_set.waiting))
        record = self.broadcast(line)
        if record is None:
            return SubmitResult(SubmitKind.BLANK, self.broadcast_set.describe(),
                                waiting=tuple(self.broadcast_set.waiting))
        return SubmitResult(SubmitKind.BROADCAST, record.describe(),
                            skipped=dict(record.skipped), broadcast=record)

    def complete(self, line: str, cursor: int) -> Completion:
        """Tab in the bar: complete the set expression or ``{placeholder}`` before the
        cursor (see :mod:`tui.core.console.complete`)."""
        hosts = self.broadcast_set.hosts
        first = self.inventory.host(hosts[0]) if hosts else None
        return complete(line, cursor, hosts=hosts, groups=self.broadcast_set.group_names,
                        placeholders=list(values_for(first)) if first else ["name", "ip"])

    def paste(self, block: str) -> SubmitResult:
        """Send a pasted block (several lines, e.g. a ``cat <<EOF | sudo tee FILE`` heredoc)
        to every member, as tmux's synchronize-panes would: each host receives the same
        bytes (no ``{name}`` substitution), lines and heredocs intact, as one command.

        Raises:
            UserError: no host can receive it.
        """
        block = block.replace("\r\n", "\n").replace("\r", "\n").rstrip("\n")
        self.history.add(block)  # memory only: a line with a newline never reaches the file
        record = self.broadcast(block, substitute_values=False)
        if record is None:
            return SubmitResult(SubmitKind.BLANK, self.broadcast_set.describe(),
                                waiting=tuple(self.broadcast_set.waiting))
        return SubmitResult(SubmitKind.BROADCAST, record.describe(),
                            skipped=dict(record.skipped), broadcast=record)

    def run_script(self, path: str, *, substitute_values: bool = False) -> SubmitResult:
        """Run the local script ``path`` on every member (``bash -s`` with the script as a
        quoted heredoc: one command per host, shown in its pane, gathered like any other);
        ``substitute_values`` replaces ``{name}``, ``{ip}``, ``{VAR}`` in it per host.

        Raises:
            UserError: the file cannot be sent (see :func:`.sendfile.read_local`), or no
                host can receive it.
        """
        command = script_command(read_local(path).text())
        record = self.broadcast(command, substitute_values=substitute_values)
        assert record is not None  # a script command is never blank
        return SubmitResult(SubmitKind.BROADCAST, record.describe(),
                            skipped=dict(record.skipped), broadcast=record)

    def broadcast(self, line: str, *, substitute_values: bool = True) -> Broadcast | None:
        """Send ``line`` (substituted per host unless ``substitute_values`` is False) to
        every member's shell.

        Returns:
            The :class:`Broadcast` record; None for a blank line (Enter is sent to every
            member, but no command is expected).

        Raises:
            UserError: no host receives broadcast input (empty set or none connected).
        """
        members = self._receivers("send this line")
        self._refuse_while_opening()
        if not line.strip():
            for name in members:
                self._send(name, "send_line", line)
            return None
        record = Broadcast(self._next_id, line, self._clock())
        self._next_id += 1
        for name in self.broadcast_set.waiting:
            record.skipped[name] = self._why_not(name)
        self._broadcasts[record.id] = record
        for name in members:
            text = (substitute(line, values_for(self.inventory.host(name)))
                    if substitute_values else line)
            shell = self._shells.get(name)
            if shell is not None and shell.busy:
                # a program is in the foreground: the line is its input, not a command
                if self._send(name, "send_line", text):
                    record.skipped[name] = AS_INPUT
                    self._transcribe(name, "broadcast", text)
                else:
                    record.skipped[name] = self._why_not(name)
                continue
            run = HostRun(name, text)
            record.runs[name] = run
            self._sending = run  # the shell reports CommandStarted while sending
            try:
                sent = self._send(name, "send_line", text)
            finally:
                self._sending = None
            if not sent:
                del record.runs[name]
                record.skipped[name] = self._why_not(name)
                continue
            self._transcribe(name, "command", text)
            if run.state == "pending" and run not in self._inflight[name]:
                self._inflight[name].append(run)  # a shell that reports no CommandStarted
        for old in list(self._broadcasts)[:-MAX_BROADCASTS]:
            del self._broadcasts[old]
        self._emit(ConsoleChanged("broadcast", broadcast_id=record.id))
        return record

    def interrupt(self) -> list[str]:
        """Send ^C to every member; returns the hosts it reached.

        Raises:
            UserError: no host receives broadcast input.
        """
        return [name for name in self._receivers("interrupt")
                if self._send(name, "interrupt", None)]

    @property
    def type_through(self) -> bool:
        """Every keystroke goes to every member (like tmux synchronize-panes)."""
        return self._type_through

    def set_type_through(self, on: bool) -> None:
        """Turn type-through mode on or off."""
        if on != self._type_through:
            self._type_through = on
            self._emit(ConsoleChanged("mode"))

    def keystroke(self, data: str) -> list[str]:
        """In type-through mode, send raw ``data`` to every member; returns those reached.

        Does nothing (returns ``[]``) when type-through is off.  Keystrokes are never
        recorded in transcripts or history.
        """
        if not self._type_through:
            return []
        reached = [name for name in self.broadcast_set.members
                   if self._send(name, "write", data)]
        for name in reached:
            self._track_typing(name, data)
        return reached

    def type_to(self, name: str, data: str) -> bool:
        """Send raw ``data`` to ``name``'s shell only (a focused pane); never recorded.

        Returns:
            False when ``name`` has no open shell (nothing was sent).
        """
        sent = self._send(name, "write", data)
        if sent:
            self._track_typing(name, data)
        return sent

    def _track_typing(self, name: str, data: str) -> None:
        """Remember whether keys typed by hand left text on ``name``'s shell line."""
        for char in data:
            if char in "\r\n\x03\x15\x04":  # Enter, ^C, ^U, ^D end or clear the line
                self._partial.discard(name)
            elif char.isprintable():
                self._partial.add(name)

    def half_typed(self) -> list[str]:
        """Members whose shell line holds text typed into their pane (or by type-through)
        since the last Enter: a broadcast would be appended to it."""
        return [name for name in self.broadcast_set.members
                if name in self._partial and self.shell(name) is not None
                and not self._busy(name)]

    def clear_half_typed(self, names: list[str]) -> None:
        """Send ^U (readline: discard the line) to ``names``."""
        for name in names:
            if self._send(name, "write", "\x15"):
                self._partial.discard(name)

    # -- results ----------------------------------------------------------------------------

    @property
    def broadcasts(self) -> list[Broadcast]:
        """The broadcast records kept, oldest first."""
        return list(self._broadcasts.values())

    def gather(self, broadcast_id: int | None = None, *,
               normalised: bool = False) -> GatherReport:
        """The gathered outputs of a broadcast (default: the last one); ``normalised``:
        each host's own name, address and variables replaced by ``{key}`` before grouping,
        so outputs that differ only by them are one block.

        Raises:
            UserError: there is no such broadcast (or none yet).
        """
        if broadcast_id is None:
            if not self._broadcasts:
                raise UserError("There is nothing to gather yet: type a command in the "
                                "broadcast bar first; its per-host results are gathered.")
            record = self._broadcasts[max(self._broadcasts)]
        else:
            try:
                record = self._broadcasts[broadcast_id]
            except KeyError:
                kept = ", ".join(map(str, self._broadcasts)) or "none"
                raise UserError(
                    f"There is no broadcast number {broadcast_id} to gather; the console "
                    f"keeps the last {MAX_BROADCASTS} (kept: {kept}).") from None
        values = None if not normalised else {
            name: values_for(self.inventory.host(name)) for name in record.runs}
        return gather_report(record, self.hosts, values)

    # -- transcripts ------------------------------------------------------------------------

    @property
    def transcripts(self) -> dict[str, Path]:
        """host -> transcript file being written (empty when transcripts are off)."""
        return self._transcripts.paths

    @property
    def transcripts_on(self) -> bool:
        """True while transcripts are written."""
        return self._transcripts.on

    def set_transcripts(self, on: bool) -> dict[str, Path]:
        """Start (a new file per host with a shell) or stop writing transcripts.

        Raises:
            UserError: a transcript file cannot be created (transcripts stay off).
        """
        if on != self._transcripts.on:
            if on:
                self._transcripts.start([n for n in self.hosts if n in self._shells])
            else:
                self._transcripts.stop()
            self._emit(ConsoleChanged("mode"))
        return self.transcripts

    def _transcribe(self, name: str, kind: Literal["output", "broadcast", "command", "note"],
                    text: str) -> None:
        if not self._transcripts.write(name, kind, text):
            self._emit(ConsoleChanged("host", name))

    # -- listeners --------------------------------------------------------------------------

    def subscribe(self, listener: Callable[[ConsoleChanged], None]) -> Callable[[], None]:
        """Call ``listener`` with every :class:`ConsoleChanged`; returns an unsubscribe."""
        return self._listeners.subscribe(listener)

    def _emit(self, change: ConsoleChanged) -> None:
        self._listeners.emit(change)

    # -- events -----------------------------------------------------------------------------

    def _on_shell_event(self, event: object) -> None:
        if isinstance(event, ShellOutput):
            self._transcribe(event.host, "output", event.data)
        elif isinstance(event, CommandStarted):
            self._on_started(event)
        elif isinstance(event, CommandFinished):
            self._on_finished(event)
        elif isinstance(event, ShellClosed):
            self._on_closed(event.host, event.reason)

    def _on_started(self, event: CommandStarted) -> None:
        """A command was queued in the shell: ours while sending, else typed in the pane."""
        name = event.host
        if name not in self._inflight:
            return
        run = self._sending
        if run is None or run.host != name or not _same_command(run.command, event.command):
            run = None
        else:
            run.state = "running"
        self._inflight[name].append(run)
        self._emit(ConsoleChanged("host", name))

    def _on_finished(self, event: CommandFinished) -> None:
        """The oldest command in flight on the host finished (the shell keeps them in order)."""
        name = event.host
        if name not in self._inflight:
            return
        self._last_exit[name] = LastExit(event.status, event.duration)
        queue = self._inflight[name]
        run = queue.popleft() if queue else None
        if run is not None:
            shell = self._shells.get(name)
            if event.status is None and shell is not None and str(shell.state) in _GONE:
                run.state, run.reason = "closed", shell.reason or "shell closed"
            else:
                run.state = "done"
            run.status = event.status
            run.duration = event.duration
            run.output = finished_output(_kept(_text(event.output)))
            self._emit(ConsoleChanged("broadcast", name, self._record_of(run)))
        self._emit(ConsoleChanged("host", name))

    def _on_closed(self, name: str, reason: str, *, lost: bool | None = None) -> None:
        """``name``'s shell ended; ``lost``: its connection dropped (default: the shell
        says so), and the host is then redialled."""
        shell = self._shells.get(name)
        if shell is None:
            return
        if lost is None:
            lost = str(shell.state) == "failed"
        self._detach(name)
        del self._shells[name]
        if lost:
            self._redial.schedule(name)  # first, so the closed state shows the retry
        self._mark_closed(name, reason or "shell closed")

    def _on_state(self, event: StateChanged) -> None:
        if event.host not in self._inflight:
            return
        # With shells on the fleet's own connections, a failed connection is a dead shell.
        # A fleet whose shells have connections of their own (the relay) reports their
        # loss through the shell itself: the shell may well outlive this connection.
        separate = getattr(self.fleet, "separate_shell_connections", False)
        if (event.state in (ConnState.FAILED, ConnState.CLOSED) and event.host in self._shells
                and not separate):
            self._on_closed(event.host, event.reason or f"connection {event.state}",
                            lost=True)
            return
        self._emit(ConsoleChanged("host", event.host))

    def _mark_closed(self, name: str, reason: str) -> None:
        """``name`` has no shell now: end its pending runs, note it, tell listeners."""
        self._closed[name] = reason
        for run in self._inflight[name]:
            if run is not None and not run.finished:
                run.state = "closed"
                run.reason = reason
                self._emit(ConsoleChanged("broadcast", name, self._record_of(run)))
        self._inflight[name].clear()
        self._transcribe(name, "note", f"shell closed: {reason}")
        self.broadcast_set.mark_available(name, False)
        self._emit(ConsoleChanged("host", name))

    def _record_of(self, run: HostRun) -> int | None:
        for record in reversed(self._broadcasts.values()):
            if record.runs.get(run.host) is run:
                return record.id
        return None

    # -- sending ----------------------------------------------------------------------------

    def _receivers(self, action: str) -> list[str]:
        members = self.broadcast_set.members
        if not members:
            raise UserError(
                f"Cannot {action}: no host receives broadcast input "
                f"({self.broadcast_set.describe()}). Type @all to select every host, or "
                "reconnect the hosts that are down.")
        return members

    def _refuse_while_opening(self) -> None:
        """No partial broadcast: a host of the set whose shell is still opening would miss
        the line that the others run, so the whole line waits."""
        opening = [n for n in self.broadcast_set.waiting  # (a host being redialled is down)
                   if self.status(n).state in (HostState.CONNECTING, HostState.IDLE)
                   and self._redial.retry(n) is None]
        if opening:
            verb, its, it = ("is", "its", "it") if len(opening) == 1 else ("are", "their",
                                                                             "them")
            raise UserError(
                f"{fold(opening)} {verb} still opening {its} shell, so the line was sent to "
                "no host (never to only some of the set). Press Enter again when the pane "
                f"says ready, or leave {it} out with -{opening[0]}.")

    def _send(self, name: str, method: str, data: str | None) -> bool:
        """Call ``shell.<method>(data)``; a failure marks the shell closed, never raises."""
        shell = self._shells.get(name)
        if shell is None:
            return False
        try:
            result = getattr(shell, method)() if data is None else getattr(shell, method)(data)
            if asyncio.iscoroutine(result):
                self._track(asyncio.ensure_future(result), name)
        except Exception as error:
            self._on_closed(name, f"sending failed: {error or type(error).__name__}")
            return False
        if str(shell.state) in _GONE:  # the shell closed and ignored the input
            self._on_closed(name, shell.reason or f"shell {shell.state}")
            return False
        return True

    def _track(self, task: asyncio.Future[Any], name: str) -> None:
        self._tasks.add(task)

        def done(future: asyncio.Future[Any]) -> None:
            self._tasks.discard(future)
            if not future.cancelled() and future.exception() is not None:
                self._on_closed(name, f"sending failed: {future.exception()}")

        task.add_done_callback(done)

    def _why_not(self, name: str) -> str:
        if name in self._closed:
            return f"shell closed: {self._closed[name]}"
        state = self.fleet.state(name)
        reason = self.fleet.reason(name)
        return f"{state}: {reason}" if reason else f"not connected ({state})"

    def _detach(self, name: str) -> None:
        unsubscribe = self._unsubscribe.pop(name, None)
        if unsubscribe is not None:
            unsubscribe()

    async def _close_shell(self, shell: ConsoleShell) -> None:
        try:
            result = shell.close()
            if asyncio.iscoroutine(result) or isinstance(result, asyncio.Future):
                await result
        except Exception as error:  # closing a dead shell must not stop the others
            log.debug("closing %s's shell: %s", shell.host, error)


KEEP_OUTPUT = 64 * 1024
"""Characters of a command's output kept per host for the gather view (head and tail)."""


def _kept(text: str) -> str:
    """The head and tail of a long output: the gather view compares, it does not archive
    (the pane's scrollback and the transcript hold everything)."""
    if len(text) <= KEEP_OUTPUT:
        return text
    half = KEEP_OUTPUT // 2
    skipped = len(text) - 2 * half
    return f"{text[:half]}\n[… {skipped:,} characters not kept …]\n{text[-half:]}"


def _same_command(sent: str, started: str) -> bool:
    """True when the shell's reported command is the line the console sent."""
    return " ".join(sent.split()) == " ".join(started.split())


def _text(data: object) -> str:
    if isinstance(data, bytes):
        return data.decode("utf-8", errors="replace")
    return str(data)
