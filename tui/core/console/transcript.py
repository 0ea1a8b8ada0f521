"""Per-host transcripts of a console session, written as plain text with secrets removed.

Files live in ``$XDG_STATE_HOME/hardway/transcripts/<cluster>/<host>-<timestamp>.log``
(mode 0600, directories 0700).  A transcript records two things only:

* the host's terminal output, converted to plain lines (:class:`PlainText`: escape
  sequences stripped, ``\\r`` progress bars collapsed to their final state), and
* the broadcast lines sent to the host, as ``# <time> broadcast: <line>`` lines: for a
  command line, this record (the line as accepted, redacted whole) replaces the shell's
  echo of it, which readline redraws in pieces when the line is longer than the pane.

Raw keystrokes (type-through mode, typing in a focused pane) are never recorded, so a
password typed at a prompt with echo off does not reach the file.  Every line goes
through :class:`LineRedactor` (audit-log patterns, registered secrets, bearer tokens, URL
passwords, whole private-key blocks).
"""

from __future__ import annotations

import codecs
import contextlib
import logging
import os
import re
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal, TextIO

from tui.core.console.plaintext import PlainText
from tui.core.console.secrets import LineRedactor, Redact
from tui.core.errors import UserError
from tui.core.paths import state_dir

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def default_directory() -> Path:
    """``$XDG_STATE_HOME/hardway/transcripts`` (``~/.local/state`` by default)."""
    return state_dir() / "transcripts"


def _utc_now() -> datetime:
    return datetime.now(UTC)


def safe_name(text: str) -> str:
    """``text`` usable as one path component (no slashes, no leading dots)."""
    return _UNSAFE.sub("_", text).lstrip(".") or "_"


class Transcript:
    """One host's transcript file (opened on creation, closed by :meth:`close`).

    Args:
        path: the file to create (its directory is created 0700).
        redact: an extra redaction, e.g. ``fleet.audit.redact`` (see :class:`LineRedactor`).
        clock: gives the current time (UTC) for broadcast lines.
    """

    def __init__(self, path: Path, *, redact: Redact | None = None,
                 clock: Clock = _utc_now) -> None:
        self.path = path
        self._clock = clock
        self._text = PlainText()
        self._redactor = LineRedactor(redact)
        self._echo: EchoSkip | None = None
        path.parent.mkdir(parents=True, mode=0o700, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL, 0o600)
        self._file: TextIO | None = os.fdopen(fd, "a", encoding="utf-8", newline="\n")

    @property
    def closed(self) -> bool:
        """True once :meth:`close` ran."""
        return self._file is None

    def output(self, data: bytes | str) -> None:
        """Record terminal output from the host (finished lines are written now)."""
        if self._file is None:
            return
        if self._echo is not None:
            data = self._echo.feed(data)
            if self._echo.done:
                self._echo = None
            if not data:
                return
        self._lines(self._text.feed(data))

    def broadcast(self, line: str) -> None:
        """Record a broadcast line sent to this host (redacted, as its own line)."""
        if self._file is None:
            return
        stamp = self._clock().astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        for part in line.splitlines() or [""]:
            self._lines([f"# {stamp} broadcast: {part}"])

    def command(self, line: str) -> None:
        """Record a command line sent to the shell, as accepted, in place of its echo.

        The shell echoes the line back (readline redraws a line longer than the pane with
        carriage returns, which would store a secret in two pieces no pattern recognises):
        the ``# <time> broadcast: <line>`` record (redacted as a whole) stands for it, the
        prompt before it is dropped, and the echo is skipped up to the line end that follows
        the line's last characters (see :class:`EchoSkip`).
        """
        if self._file is None:
            return
        self._release_echo()
        self.broadcast(line)
        self._text.flush()  # the prompt the line was typed at
        skip = EchoSkip(line)
        self._echo = skip if skip.tail else None

    def note(self, text: str) -> None:
        """Record a console event (``# <time> <text>``), e.g. a closed shell."""
        if self._file is None:
            return
        stamp = self._clock().astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        self._lines([f"# {stamp} {text}"])

    def close(self) -> None:
        """Write the unfinished last line, then close the file (idempotent)."""
        if self._file is None:
            return
        self._release_echo()
        rest = self._text.flush()
        if rest:
            self._lines([rest])
        self._file.close()
        self._file = None

    def _release_echo(self) -> None:
        """Give back what an unfinished echo skip holds (the echo never came: output)."""
        if self._echo is not None:
            held, self._echo = self._echo.release(), None
            if held:
                self._lines(self._text.feed(held))

    def _lines(self, lines: list[str]) -> None:
        assert self._file is not None
        kept = [text for text in map(self._redactor.line, lines) if text is not None]
        if kept:
            self._file.write("".join(line + "\n" for line in kept))
            self._file.flush()


class EchoSkip:
    """Skips the shell's echo of a command line in the output that follows it.

    The echo ends at the first line end after the command's last non-blank characters
    (the Enter); everything after that is output.  Escape sequences, carriage returns,
    backspaces and blanks are ignored while looking for those characters, so readline's
    redraw of a wrapped line is skipped whole.  When they do not show up within
    :data:`ECHO_LIMIT` characters (a shell that does not echo), the held text is given
    back as output.

    Args:
        line: the command line sent.
    """

    ECHO_LIMIT = 65536

    def __init__(self, line: str) -> None:
        self.tail = re.sub(r"\s+", "", line)[-16:]
        self.done = False
        self._seen = False
        self._window = ""
        self._held: list[str] = []
        self._size = 0
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def feed(self, data: bytes | str) -> str:
        """The part of ``data`` that is output, not echo ("" while the echo goes on)."""
        text = self._decoder.decode(data) if isinstance(data, bytes) else data
        if not self._seen:
            self._held.append(text)
            self._size += len(text)
            end = self._tail_end(text)
            if end is None:
                if self._size > self.ECHO_LIMIT:
                    self.done = True
                    return "".join(self._held)
                return ""
            self._seen = True
            self._held.clear()
            text = text[end:]
        newline = text.find("\n")
        if newline < 0:
            return ""
        self.done = True
        return text[newline + 1:]

    def release(self) -> str:
        """What is held while looking for the echo (given back when it never came)."""
        held = "".join(self._held)
        self._held.clear()
        self.done = True
        return held

    def _tail_end(self, text: str) -> int | None:
        """Index just after the command's last characters in ``text`` (None: not yet)."""
        start = 0
        spans = [(m.start(), m.end()) for m in _ESCAPE.finditer(text)] + [(len(text), len(text))]
        for begin, finish in spans:
            for index in range(start, begin):
                char = text[index]
                if char.isspace() or ord(char) < 32 or char == "\x7f":
                    continue
                self._window = (self._window + char)[-len(self.tail):]
                if self._window == self.tail:
                    return index + 1
            start = finish
        return None


_ESCAPE = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)|\x1b[ -/]*[0-~]")


class TranscriptStore:
    """Creates transcript files for one cluster.

    Args:
        cluster: the cluster (inventory) name; one directory per cluster.
        directory: the transcripts root (default :func:`default_directory`).
        redact: an extra redaction passed to every transcript (``fleet.audit.redact``).
        clock: gives the current time (UTC) for file names and broadcast lines.
    """

    def __init__(self, cluster: str, directory: Path | None = None, *,
                 redact: Redact | None = None, clock: Clock = _utc_now) -> None:
        self.directory = (directory or default_directory()) / safe_name(cluster)
        self._redact = redact
        self._clock = clock

    def open(self, host: str) -> Transcript:
        """Start a new transcript for ``host``: ``<host>-<YYYYmmddTHHMMSSZ>.log``.

        A second transcript in the same second gets a ``-2``, ``-3``... suffix.
        """
        stamp = self._clock().astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")
        base = f"{safe_name(host)}-{stamp}"
        for attempt in range(1, 1000):
            name = f"{base}.log" if attempt == 1 else f"{base}-{attempt}.log"
            try:
                return Transcript(self.directory / name, redact=self._redact,
                                  clock=self._clock)
            except FileExistsError:
                continue
        raise FileExistsError(self.directory / f"{base}.log")


class TranscriptSet:
    """A console's transcripts: off or on, with one open file per host while on.

    Args:
        cluster: the cluster name (used when no store is given).
        store: where files are created (default: :class:`TranscriptStore` in the XDG
            state dir, made on first use).
        redact: the session's redactor for the default store (``audit.redact``: the
            inventory's registered secrets too).

    A disk error while writing stops that host's transcript (logged); the console and
    the other transcripts carry on.
    """

    def __init__(self, cluster: str, store: TranscriptStore | None = None, *,
                 redact: Redact | None = None) -> None:
        self._cluster = cluster
        self._store = store
        self._redact = redact
        self._open: dict[str, Transcript] = {}
        self.on = False

    @property
    def paths(self) -> dict[str, Path]:
        """host -> the file being written (empty when off)."""
        return {name: t.path for name, t in self._open.items()}

    def path(self, host: str) -> Path | None:
        """The file being written for ``host`` (None when there is none)."""
        transcript = self._open.get(host)
        return transcript.path if transcript else None

    def start(self, hosts: list[str]) -> None:
        """Turn transcripts on with a new file for each of ``hosts``.

        Raises:
            UserError: a file cannot be created; transcripts stay off.
        """
        self.on = True
        try:
            for host in hosts:
                self.open(host, quiet=False)
        except UserError:
            self.stop()
            raise

    def stop(self) -> None:
        """Close every file and turn transcripts off."""
        self.on = False
        for transcript in self._open.values():
            with contextlib.suppress(OSError):
                transcript.close()
        self._open.clear()

    def open(self, host: str, *, quiet: bool = True) -> None:
        """Start ``host``'s file if transcripts are on and it has none.

        Args:
            quiet: log a failure instead of raising it.

        Raises:
            UserError: the file cannot be created (only when ``quiet`` is False).
        """
        if not self.on or host in self._open:
            return
        if self._store is None:
            self._store = TranscriptStore(self._cluster, redact=self._redact)
        try:
            self._open[host] = self._store.open(host)
        except OSError as error:
            problem = UserError(
                f"Cannot write {host}'s console transcript in {self._store.directory} "
                f"({error.strerror or error}); transcripts are off. Make the directory "
                "writable or set XDG_STATE_HOME to a writable directory.")
            if not quiet:
                raise problem from None
            log.warning("%s", problem)

    def write(self, host: str, kind: Literal["output", "broadcast", "command", "note"],
              text: str) -> bool:
        """Add output, a broadcast line (``command``: a command line, whose echo is
        skipped; ``broadcast``: input for a program) or a note to ``host``'s file.

        Returns:
            False when the file failed and was stopped (a listener may want to redraw).
        """
        transcript = self._open.get(host)
        if transcript is None:
            return True
        try:
            if kind == "output":
                transcript.output(text)
            elif kind == "broadcast":
                transcript.broadcast(text)
            elif kind == "command":
                transcript.command(text)
            else:
                transcript.note(text)
        except OSError as error:
            log.warning("transcript %s stopped: %s", transcript.path, error)
            del self._open[host]
            with contextlib.suppress(OSError):
                transcript.close()
            return False
        return True
