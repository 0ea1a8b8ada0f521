"""History of the lines typed in the console's broadcast bar, kept across runs.

Navigation works like readline without prefix search: Up walks to older lines, Down to
newer ones and finally back to the line that was being typed (the draft).  Consecutive
duplicates are stored once and the history is capped (1000 lines by default).

The file is ``$XDG_STATE_HOME/hardway/history`` (``~/.local/state/hardway/history``), one
line per entry, mode 0600 in a 0700 directory.

Secrets: a line that looks like it carries a secret (what :func:`secrets.redact_text`
would change: private keys, ``password=``, ``secret=``, ``token=``, ``--password x``,
bearer tokens, URL passwords) is **kept in memory for this session only and never
written to the file** (a redacted form would be useless to recall and dangerous to
re-run).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable
from pathlib import Path

from tui.core.console.secrets import Redact, contains_secret
from tui.core.paths import state_dir

DEFAULT_LIMIT = 1000
"""Lines kept in memory and in the file."""


def default_path() -> Path:
    """``$XDG_STATE_HOME/hardway/history`` (``~/.local/state`` by default)."""
    return state_dir() / "history"


class History:
    """Broadcast-bar history with readline-style navigation and a history file.

    Args:
        path: the history file; None keeps the history in memory only.
        limit: at most this many lines are kept (oldest dropped first).
        redact: an extra redaction used to recognise secrets besides the audit patterns
            (pass ``fleet.audit.redact`` to include the secrets registered on it).
    """

    def __init__(self, path: Path | None = None, *, limit: int = DEFAULT_LIMIT,
                 redact: Redact | None = None) -> None:
        if limit < 1:
            raise ValueError("the history limit must be at least 1")
        self.path = path
        self.limit = limit
        self._redact = redact
        self._entries: list[str] = []
        self._persisted: list[str] = []
        self._cursor = 0
        self._draft = ""
        self.problem: str | None = None
        """Why the file could not be written (None while all is well)."""
        if path is not None:
            self._persisted = _read(path)[-limit:]
            self._entries = list(self._persisted)
        self._cursor = len(self._entries)

    @property
    def entries(self) -> list[str]:
        """Every line, oldest first (including this session's secret lines)."""
        return list(self._entries)

    @property
    def persisted(self) -> list[str]:
        """The lines that are (or will be) in the file, oldest first."""
        return list(self._persisted)

    def search(self, query: str, limit: int = 200) -> list[str]:
        """Lines containing ``query`` (case-insensitive; every line for ""), newest first,
        each once: what ctrl+r offers."""
        needle = query.casefold()
        found: dict[str, None] = {}
        for line in reversed(self._entries):
            if needle in line.casefold() and line not in found:
                found[line] = None
                if len(found) >= limit:
                    break
        return list(found)

    def add(self, line: str) -> bool:
        """Record a submitted line and reset navigation to the draft position.

        Blank lines, and a line equal to the newest entry, are not recorded.  Lines with
        a newline never reach the file; lines that carry a secret stay in memory only.

        Returns:
            True when the line was written to the history file.
        """
        self._cursor_reset()
        if not line.strip():
            return False
        if self._entries and self._entries[-1] == line:
            return False
        self._entries.append(line)
        del self._entries[:-self.limit]
        self._cursor = len(self._entries)
        if "\n" in line or "\r" in line or contains_secret(line, self._redact):
            return False
        if self._persisted and self._persisted[-1] == line:
            return False
        self._persisted.append(line)
        if self.path is None or self.problem is not None:
            return False
        try:
            self._write(line)
        except OSError as error:
            reason = error.strerror or type(error).__name__
            self.problem = (
                f"The console history cannot be written to {self.path} ({reason}); history "
                "is kept in memory until hardway exits. Check that the directory is "
                "writable, or set XDG_STATE_HOME to a writable directory.")
            return False
        return True

    def previous(self, current: str = "") -> str:
        """The next older line (Up); ``current`` is kept as the draft when leaving it.

        At the oldest line, returns it again; with no history, returns ``current``.
        """
        if self._cursor == len(self._entries):
            self._draft = current
        if not self._entries:
            return current
        self._cursor = max(0, self._cursor - 1)
        return self._entries[self._cursor]

    def next(self) -> str:
        """The next newer line (Down); past the newest, the draft typed before Up."""
        if self._cursor >= len(self._entries):
            return self._draft
        self._cursor += 1
        if self._cursor == len(self._entries):
            return self._draft
        return self._entries[self._cursor]

    def _cursor_reset(self) -> None:
        self._cursor = len(self._entries)
        self._draft = ""

    def _write(self, line: str) -> None:
        """Append ``line``; rewrite the file with the newest ``limit`` lines when over."""
        assert self.path is not None
        self.path.parent.mkdir(parents=True, mode=0o700, exist_ok=True)
        if len(self._persisted) > self.limit:
            del self._persisted[:-self.limit]
            _replace(self.path, self._persisted)
            return
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.fchmod(fd, 0o600)
            os.write(fd, (line + "\n").encode("utf-8"))
        finally:
            os.close(fd)


def _read(path: Path) -> list[str]:
    """The lines of the history file (none when it is missing or unreadable)."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    lines: list[str] = []
    for line in text.splitlines():
        if line.strip() and (not lines or lines[-1] != line):
            lines.append(line)
    return lines


def _replace(path: Path, lines: Iterable[str]) -> None:
    """Write ``lines`` to a temporary file beside ``path`` and rename it over ``path``."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, "".join(line + "\n" for line in lines).encode("utf-8"))
    finally:
        os.close(fd)
    try:
        os.replace(temporary, path)
    except OSError:
        with contextlib.suppress(OSError):
            temporary.unlink()
        raise
