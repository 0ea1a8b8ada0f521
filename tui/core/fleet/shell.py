"""Persistent interactive shells on fleet hosts: the console's panes.

:func:`open_shell` asks the host's sshd for an ordinary login shell on a PTY (a ``shell``
request, exactly what ``ssh HOST`` gets, so /etc/profile, ~/.bashrc, motd... behave as
usual) and then types one setup line into it.  That line exports ``HOST_NAME``,
``INTERNAL_IP``, ``ETCD_NAME`` and the host's vars and installs shell integration:

* bash: a ``PROMPT_COMMAND`` function run first (any existing ``PROMPT_COMMAND`` is kept and
  still sees ``$?``) printing ``OSC 133;D;$?`` and ``OSC 133;A``, and ``PS0`` printing
  ``OSC 133;C`` before each command's output; the setup line is removed from the history
  (when HISTCONTROL did not already keep it out);
* zsh: the same through ``precmd_functions`` and ``preexec_functions``;
* any other POSIX shell (dash, ksh): ``OSC 133;D;$?`` and ``OSC 133;A`` at the front of
  ``PS1`` (dash and ksh expand ``$?`` in ``PS1``), ``OSC 133;B`` at its end and a marker at
  the end of ``PS2``.  There is no output-start marker: the output starts after the
  echoed line and the prompt (or, for a multi-line command, after its last continuation
  prompt).

Every marker carries ``hw=ID`` (one ID per installation), so the markers of a nested
shell that :meth:`Shell.integrate` set up (after ``sudo -i``) are told from the outer
shell's, and foreign OSC 133 markers (another tool's integration) are ignored.

Everything the shell prints before the setup line reports back (``OSC 133;hardway;ready``)
is hidden -- motd, rc output and the echo of the setup line -- and kept in
:attr:`Shell.preamble`.  A shell that never reports (fish, csh, an rc file that reads
stdin) is shown as it is after ``ready_timeout`` seconds, without command tracking.

Markers are removed from :class:`ShellOutput`; :class:`CommandFinished` carries the exit
status, the duration from :meth:`Shell.send_line` to the ``D`` marker and the command's
output without the echoed command line and without the next prompt.

Known limit: a nested interactive shell (``sudo -i``, ``su -``, ``ssh``) has no
integration until :meth:`Shell.integrate` is called in it; until then the command that
started it stays busy and commands typed inside get no CommandFinished.  Output and
``interrupt()`` keep working.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING

from tui.core.audit import AuditLog
from tui.core.fleet.errors import HostUnavailable, ssh_errors
from tui.core.fleet.listeners import ReplayingListeners
from tui.core.fleet.osc133 import ZSH_PROMPT_SP, Marker, MarkerParser, integration_line
from tui.core.fleet.typed_line import TypedLine
from tui.core.inventory.model import Host

if TYPE_CHECKING:  # asyncssh loads with the first real connection, not with this module
    import asyncssh

    from tui.core.fleet.connection import HostConnection

log = logging.getLogger("hardway.fleet.shell")

READY_TIMEOUT = 8.0
"""Seconds to wait for the setup line to report before showing the shell as it is."""
CLOSE_WAIT = 5.0
SHELL_WINDOW = 256 * 1024
"""SSH receive window of an interactive shell: small enough that a host flooding output
cannot queue seconds of data ahead of the echo of the next keystroke."""

OUTPUT_LIMIT = 1_000_000
"""Characters of a command's output kept for :class:`CommandFinished` (the head)."""
PASTE_START = "\x1b[200~"
PASTE_END = "\x1b[201~"
"""Bracketed paste: what a terminal wraps a paste in when the shell asked (``CSI ?2004 h``)."""
BACKLOG_LIMIT = 1_000_000
"""Characters of output kept for the first subscriber (events before it subscribed)."""
PREAMBLE_LIMIT = 65_536
INTERRUPT = "\x03"

__all__ = [
    "ChannelLost",
    "CommandFinished",
    "CommandStarted",
    "Shell",
    "ShellClosed",
    "ShellEvent",
    "ShellOutput",
    "ShellState",
    "open_shell",
]


class ChannelLost(ConnectionError):
    """A shell's channel went away for a reason worth telling (its text ends the shell's
    reason), e.g. the console's SSH relay process ended."""


class ShellState(StrEnum):
    """Life cycle of a shell."""

    OPENING = "opening"
    OPEN = "open"
    CLOSED = "closed"
    FAILED = "failed"


@dataclass(frozen=True)
class ShellOutput:
    """Terminal output of the shell on ``host`` (decoded; OSC 133 markers removed)."""

    host: str
    data: str


@dataclass(frozen=True)
class CommandStarted:
    """A command line was sent to the shell (``command`` is "" when typed in the pane).

    Attributes:
        at: wall-clock time (``time.time()``) it was sent.
    """

    host: str
    command: str
    at: float


@dataclass(frozen=True)
class CommandFinished:
    """The shell printed its next prompt after a command.

    Attributes:
        status: the command's exit status (None when the shell closed first or the shell
            gave no number).
        duration: seconds from the line being sent to the prompt marker.
        output: what the command printed (CR LF as LF), without the echoed command line
            and the next prompt.
        command: the line as sent ("" when typed in the pane).
        truncated: ``output`` holds only the first :data:`OUTPUT_LIMIT` characters.
    """

    host: str
    status: int | None
    duration: float
    output: str
    command: str = ""
    truncated: bool = False


@dataclass(frozen=True)
class ShellClosed:
    """The shell on ``host`` is gone; ``reason`` says why in plain words."""

    host: str
    reason: str


ShellEvent = ShellOutput | CommandStarted | CommandFinished | ShellClosed


def without_echo(text: str, echo: str, least: int = 8) -> str:
    """``text`` without the terminal's echo of ``echo`` (the setup line), also where
    the shell's own words came in the middle of it (a shell that exits at once races the
    echo): every stretch of at least ``least`` characters shared with it, in order, goes."""
    import difflib

    matcher = difflib.SequenceMatcher(None, text, echo, autojunk=False)
    kept: list[str] = []
    last = 0
    for start, _at, size in matcher.get_matching_blocks():
        if size >= least:
            kept.append(text[last:start])
            last = start + size
    kept.append(text[last:])
    return "".join(kept)


def output_size(event: ShellEvent) -> int:
    """Characters an event adds to a backlog (only output counts)."""
    return len(event.data) if isinstance(event, ShellOutput) else 0

@dataclass
class _Command:
    """A command the shell is running (or has queued), and its captured output."""

    text: str
    started: float
    echo_lines: int
    typed: str = ""
    """The line as typed in the pane (read back from the echo; see TypedLine)."""
    output_marked: bool = False
    continuations: int = 0
    chunks: list[str] = field(default_factory=list)
    size: int = 0
    truncated: bool = False

    def prompt_seen(self) -> None:
        """The prompt was printed after the line was sent (and maybe after its echo)."""
        seen = sum(chunk.count("\n") for chunk in self.chunks)
        self.echo_lines = max(0, self.echo_lines - seen)
        self.chunks.clear()
        self.size = 0

    def mark_output(self) -> None:
        """Output starts here: what was captured so far was the echo and prompts."""
        self.output_marked = True
        self.chunks.clear()
        self.size = 0

    def capture(self, text: str) -> None:
        room = OUTPUT_LIMIT - self.size
        if room <= 0:
            self.truncated = True
            return
        if len(text) > room:
            text = text[:room]
            self.truncated = True
        self.chunks.append(text)
        self.size += len(text)

    def output(self, kind: str) -> str:
        text = "".join(self.chunks).replace("\r\n", "\n")
        if not self.output_marked:  # no C marker: drop the echoed command line(s)
            for _ in range(self.echo_lines):
                _, newline, rest = text.partition("\n")
                text = rest if newline else ""
        if kind == "zsh" and text.endswith("\r"):  # zsh prints PROMPT_SP before precmd
            text = ZSH_PROMPT_SP.sub("", text)
        return text


@dataclass
class _Level:
    """One integrated shell (the login shell, or a nested one such as ``sudo -i``)."""

    ident: str
    kind: str = "sh"
    commands: deque[_Command] = field(default_factory=deque)


if TYPE_CHECKING:
    _SessionBase = asyncssh.SSHClientSession[bytes]
else:
    _SessionBase = object


class _Session(_SessionBase):
    """The channel's session (asyncssh's ``SSHClientSession`` interface, written out so
    that a relayed shell does not load asyncssh)."""

    def __init__(self, shell: Shell) -> None:
        self._shell = shell

    def connection_made(self, chan: object) -> None:
        """The channel is open (the shell keeps it from ``create_session``)."""

    def session_started(self) -> None:
        """The shell request was accepted."""

    def data_received(self, data: bytes, datatype: object) -> None:
        self._shell._received(data)

    def eof_received(self) -> bool:
        """The host sent EOF: let the channel close."""
        return False

    def pause_writing(self) -> None:
        """Keystrokes are few: nothing to pause."""

    def resume_writing(self) -> None:
        """See :meth:`pause_writing`."""

    def xon_xoff_requested(self, client_can_do: bool) -> None:
        """The PTY's flow control stays with the host."""

    def exit_status_received(self, status: int) -> None:
        self._shell._exit = f"exited with status {status}"

    def exit_signal_received(self, signal: str, core_dumped: bool, msg: str,
                             lang: str) -> None:
        self._shell._exit = f"was killed by SIG{signal}"

    def connection_lost(self, exc: Exception | None) -> None:
        self._shell._lost(exc)


class Shell:
    """One persistent interactive shell on a host's SSH connection.

    Create it with :func:`open_shell` (or ``Fleet.open_shell``).  Events go to the
    callbacks given to :meth:`subscribe`; events emitted before the first subscriber
    (such as the first prompt) are replayed to it.

    Attributes:
        host: the host's inventory name.
        state: opening, open, closed or failed.
        reason: why the shell is closed or failed (plain words).
        kind: the flavour of the innermost integrated shell (``bash``, ``zsh``, ``sh``),
            None when no shell ever reported.
        preamble: what the login shell printed before it was ready (hidden from the pane).
        size: the window size as (columns, rows).
    """

    def __init__(self, hc: HostConnection, host: Host, *, columns: int = 80, rows: int = 24,
                 term: str = "xterm-256color", audit: AuditLog | None = None) -> None:
        self.host = host.name
        self.state = ShellState.OPENING
        self.reason = ""
        self.kind: str | None = None
        self.preamble = ""
        self.size = (columns, rows)
        self._hc = hc
        self._info = host
        self._term = term
        self._audit = audit
        self._typed = TypedLine()
        self._bracketed_paste = False
        self._chan: asyncssh.SSHClientChannel[bytes] | None = None
        self._conn: asyncssh.SSHClientConnection | None = None
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._parser = MarkerParser()
        self._events: ReplayingListeners[ShellEvent] = ReplayingListeners(
            limit=BACKLOG_LIMIT, size=output_size)
        self._levels: list[_Level] = []
        self._next_ident = 0
        self._installing: str | None = None
        self._skip_status: str | None = None
        self._hidden: list[str] | None = None
        self._hidden_size = 0
        self._setup = ""
        self._exit = ""
        self._closing = False
        self._ready = asyncio.Event()
        self._gone = asyncio.Event()

    # -- public API -----------------------------------------------------------------------

    @property
    def busy(self) -> bool:
        """True while a command sent (or typed) has not reached the next prompt."""
        return bool(self._levels and self._levels[-1].commands)

    @property
    def integrated(self) -> bool:
        """True when the shell in the foreground reports prompts and exit statuses."""
        return bool(self._levels) and self._installing is None

    def subscribe(self, callback: Callable[[ShellEvent], None]) -> Callable[[], None]:
        """Call ``callback`` with every event; returns an unsubscribe function."""
        return self._events.subscribe(callback)

    def write(self, data: str) -> None:
        """Send raw keystrokes (ignored once the shell is closed)."""
        chan = self._chan
        if chan is None or self._gone.is_set():
            return
        if not self.busy:
            self._typed.keys_sent()
        try:
            chan.write(data.encode("utf-8"))
        except ssh_errors() as exc:
            log.debug("write to the shell on %s failed: %s", self.host, exc)

    def send_line(self, line: str) -> CommandStarted | None:
        """Type ``line`` and Enter.

        At a prompt the line is a new command: CommandStarted is emitted and returned, and
        CommandFinished follows at the next prompt (when the shell is :attr:`integrated`).
        While a command runs (:attr:`busy`) the line is input for it -- an answer to a
        question, or type-ahead -- and None is returned, as it is when the shell is closed.
        """
        if self._chan is None or self._gone.is_set():
            return None
        text = line.replace("\r\n", "\n").rstrip("\n")
        if self.busy:
            self.write(text + "\n")
            return None
        if self._levels:
            self._levels[-1].commands.append(
                _Command(text, time.monotonic(), text.count("\n") + 1))
        event = CommandStarted(self.host, text, time.time())
        self._emit(event)
        if "\n" in text and self._bracketed_paste:
            # as a terminal pastes: the shell takes the lines as one command line (one
            # prompt, one exit status), heredocs included, and Enter runs it
            self.write(f"{PASTE_START}{text}{PASTE_END}\n")
        else:
            self.write(text + "\n")
        return event

    def resize(self, columns: int, rows: int) -> None:
        """Change the PTY's window size (the remote side gets SIGWINCH)."""
        self.size = (columns, rows)
        self._typed.resize(columns)
        chan = self._chan
        if chan is None or self._gone.is_set():
            return
        with contextlib.suppress(*ssh_errors()):
            chan.change_terminal_size(columns, rows)

    def interrupt(self) -> None:
        """Ctrl-C through the PTY: SIGINT to the foreground job."""
        self.write(INTERRUPT)

    async def integrate(self, timeout: float = READY_TIMEOUT) -> bool:
        """Install integration (and the host's variables) in the shell now at the prompt.

        Use it in a nested shell (after ``sudo -i``, ``su -``): the command that started
        it stays busy, and commands inside it get their own CommandFinished.  Output is
        hidden until the shell reports, or for ``timeout`` seconds when it never does
        (then False is returned and the hidden output is shown).
        """
        if self._chan is None or self._gone.is_set():
            return False
        self._install()
        return await self._wait_ready(timeout)

    async def close(self) -> None:
        """Close the shell (its processes get SIGHUP) and wait until it is gone."""
        chan = self._chan
        if chan is None or self._gone.is_set():
            self._finish(ShellState.CLOSED, self.reason or "closed")
            return
        self._closing = True
        chan.close()
        try:
            await asyncio.wait_for(self._gone.wait(), CLOSE_WAIT)
        except TimeoutError:
            chan.abort()
            self._finish(ShellState.CLOSED, "closed")

    # -- opening and integration ----------------------------------------------------------

    async def _open(self, ready_timeout: float) -> None:
        try:
            conn = await self._hc.ensure()
        except HostUnavailable as exc:
            self._finish(ShellState.FAILED, exc.reason)
            return
        self._conn = conn
        # Hidden from the channel's first byte, not only from the setup line: output can
        # reach _received before this coroutine resumes (the relay's reader takes OPENED
        # and the first DATA, the login shell's prompt, in one turn), and a prompt shown
        # then stayed in front of the one after the setup line ("...:# root@h:# ").
        self._hidden, self._hidden_size = [], 0
        try:
            chan, _session = await conn.create_session(
                lambda: _Session(self), None, encoding=None, request_pty="force",
                term_type=self._term, term_size=self.size, window=SHELL_WINDOW)
        except ssh_errors() as exc:
            self._finish(ShellState.FAILED, (
                f"cannot open a shell on {self.host} ({self._hc.endpoint}): "
                f"{getattr(exc, 'reason', None) or exc}"))
            return
        self._chan = chan
        self._install()
        if not await self._wait_ready(ready_timeout):
            log.info("the shell on %s did not report within %.0f s: no command tracking",
                     self.host, ready_timeout)
        if self.state == ShellState.OPENING:
            self.state = ShellState.OPEN

    def _install(self) -> None:
        """Type the setup line; hide output until the shell reports back (still hidden
        while opening: what the login shell printed so far stays in the preamble)."""
        ident = str(self._next_ident)
        self._next_ident += 1
        self._setup = integration_line(self._info.env(), ident)
        self._levels.append(_Level(ident))
        self._installing = ident
        if self._hidden is None:
            self._hidden, self._hidden_size = [], 0
        self._ready.clear()
        self.write(self._setup)

    async def _wait_ready(self, timeout: float) -> bool:
        ready = asyncio.ensure_future(self._ready.wait())
        gone = asyncio.ensure_future(self._gone.wait())
        try:
            await asyncio.wait([ready, gone], timeout=timeout,
                               return_when=asyncio.FIRST_COMPLETED)
        finally:
            ready.cancel()
            gone.cancel()
        if self._ready.is_set():
            return True
        ident, self._installing = self._installing, None
        if ident is not None and self._levels and self._levels[-1].ident == ident:
            stale = self._levels.pop()  # commands sent meanwhile belong to the outer level
            if self._levels:
                self._levels[-1].commands.extend(stale.commands)
        hidden = self._reveal()
        if self.state == ShellState.OPENING:
            self.preamble = hidden
            self.state = ShellState.OPEN
        if hidden and not self._gone.is_set():
            self._emit(ShellOutput(self.host, hidden))
        return False

    def _reveal(self) -> str:
        hidden, self._hidden = self._hidden, None
        return "".join(hidden or ())

    # -- incoming data --------------------------------------------------------------------

    def _received(self, data: bytes) -> None:
        text = self._decoder.decode(data)
        if text:
            for piece in self._parser.feed(text):
                if isinstance(piece, str):
                    self._text(piece)
                else:
                    self._marker(piece)

    def _text(self, text: str) -> None:
        hidden = self._hidden
        if hidden is not None:
            if self._hidden_size < PREAMBLE_LIMIT:
                hidden.append(text)
                self._hidden_size += len(text)
            return
        self._emit(ShellOutput(self.host, text))
        if "\x1b[?2004" in text:  # readline asks for (h) or stops taking (l) pastes
            self._bracketed_paste = text.rfind("\x1b[?2004h") > text.rfind("\x1b[?2004l")
        levels = self._levels
        if levels and levels[-1].commands:
            levels[-1].commands[0].capture(text)
        elif self._typed.following:
            self._typed.feed(text)

    def _level(self, marker: Marker) -> int | None:
        """Index of the integrated shell that printed ``marker`` (None: not ours)."""
        ident = marker.option("hw")
        for index in range(len(self._levels) - 1, -1, -1):
            if self._levels[index].ident == ident:
                return index
        return None

    def _leave_inner(self, index: int) -> None:
        """Shells above ``index`` have exited: finish what they were running."""
        while len(self._levels) > index + 1:
            inner = self._levels.pop()
            while inner.commands:
                self._finished(inner, None)
            if self._levels:
                self.kind = self._levels[-1].kind

    def _marker(self, marker: Marker) -> None:
        kind = marker.kind
        if kind == "hardway" and marker.args[:1] == ("ready",):
            if len(marker.args) >= 3:
                self._ready_marker(marker.args[1], marker.args[2])
            return
        self._follow_typed(marker)
        index = self._level(marker)
        if index is None:
            return
        level = self._levels[index]
        if kind == "hardway" and marker.args[:1] == ("ps2",):
            if level.commands:  # a continuation prompt: the echo of the lines is over
                head = level.commands[0]
                head.continuations += 1
                if not head.output_marked and head.continuations >= head.echo_lines - 1:
                    head.mark_output()
            return
        if kind == "B":  # end of a POSIX shell's prompt: what came before was no output
            if level.commands and not level.commands[0].output_marked:
                level.commands[0].prompt_seen()
            return
        if kind not in ("C", "D"):
            return
        if kind == "D" and self._skip_status == level.ident:
            self._skip_status = None  # the prompt after the setup line
            return
        self._leave_inner(index)
        if kind == "D":
            if level.commands:
                self._finished(level, marker.status)
            return
        if not level.commands:  # a command typed in the pane
            level.commands.append(_Command("", time.monotonic(), 0,
                                           typed=self._typed.accepted()))
            self._emit(CommandStarted(self.host, "", time.time()))
        head = level.commands[0]
        if not head.output_marked:
            head.mark_output()

    def _follow_typed(self, marker: Marker) -> None:
        """Prompt markers drive :class:`TypedLine` (a line typed in the pane is read back
        from its echo for the audit log)."""
        kind = marker.kind
        if kind == "A":
            self._typed.prompt(self.size[0])
        elif kind == "B":
            self._typed.prompt_end()
        elif kind == "hardway" and marker.args[:1] == ("ps2",):
            self._typed.continuation()

    def _ready_marker(self, kind: str, ident: str) -> None:
        self.kind = kind
        self._skip_status = ident
        level = next((lv for lv in self._levels if lv.ident == ident), None)
        if level is None:  # it reported after we gave up waiting
            level = _Level(ident)
            self._levels.append(level)
        level.kind = kind
        if ident == self._installing:
            self._installing = None
            hidden = self._reveal()
            if self.state == ShellState.OPENING:
                self.preamble = hidden
                self.state = ShellState.OPEN
            self._ready.set()

    def _finished(self, level: _Level, status: int | None) -> None:
        command = level.commands.popleft()
        duration = time.monotonic() - command.started
        self._emit(CommandFinished(self.host, status, duration, command.output(level.kind),
                                   command.text, command.truncated))
        if self._audit is None:
            return
        if command.text:
            self._audit.record(host=self.host, kind="shell", command=command.text,
                               status=status, duration=duration,
                               remote_user=self._hc.user or None)
        elif command.typed:
            self._audit.record(host=self.host, kind="shell", command=command.typed,
                               status=status, duration=duration, typed=True,
                               remote_user=self._hc.user or None)

    # -- the end --------------------------------------------------------------------------

    def _lost(self, exc: Exception | None) -> None:
        rest = self._decoder.decode(b"", final=True) + self._parser.flush()
        if rest:
            self._text(rest)
        if self._closing:
            self._finish(ShellState.CLOSED, "closed")
        elif self._exit:
            self._finish(ShellState.CLOSED, f"the shell on {self.host} {self._exit}")
        elif exc is None and self._hc._closing:  # the fleet closed it (reconnect, exit)
            self._finish(ShellState.CLOSED, f"the connection to {self._hc.endpoint} was closed")
        elif isinstance(exc, ChannelLost):
            self._finish(ShellState.FAILED, f"connection to {self._hc.endpoint} lost: {exc}")
        elif exc is not None or self._conn is not self._hc.connection:
            self._finish(ShellState.FAILED, f"connection to {self._hc.endpoint} lost")
        else:
            self._finish(ShellState.CLOSED,
                         f"the shell on {self.host} was closed by {self._hc.endpoint}")

    def _finish(self, state: ShellState, reason: str) -> None:
        if self._gone.is_set():
            return
        if self.state == ShellState.OPENING:
            hidden = self._reveal()
            self.preamble = hidden
            if state == ShellState.CLOSED:  # it never became usable
                state = ShellState.FAILED
                said = " ".join(without_echo(hidden, self._setup.rstrip("\n")).split())
                reason = f"{reason} while starting" + (f": {said[-300:]}" if said else "")
        self.state, self.reason = state, reason
        self._leave_inner(-1)
        self._emit(ShellClosed(self.host, reason))
        self._gone.set()

    # -- events ---------------------------------------------------------------------------

    def _emit(self, event: ShellEvent) -> None:
        self._events.emit(event)


async def open_shell(hc: HostConnection, host: Host, *, columns: int = 80, rows: int = 24,
                     term: str = "xterm-256color", ready_timeout: float = READY_TIMEOUT,
                     audit: AuditLog | None = None) -> Shell:
    """Open an interactive login shell on ``host`` and install shell integration.

    Never raises for remote problems: an unreachable host or a refused channel gives a
    Shell in state ``failed`` with a reason.

    Raises:
        UserError: a host variable name is not a valid shell identifier.
    """
    shell = Shell(hc, host, columns=columns, rows=rows, term=term, audit=audit)
    try:
        await shell._open(ready_timeout)
    except BaseException:
        if shell._chan is not None:
            shell._chan.abort()
        raise
    return shell
