"""hardway's log file: ``$XDG_STATE_HOME/hardway/hardway.log``, rotated, secrets redacted.

The app draws on the terminal and Textual captures stderr, so a traceback logged by a
listener or a failed action would vanish without a file to go to.  :func:`configure`
attaches one rotating file handler to the root logger (every ``hardway.*`` and
``tui.*`` logger reaches it); each line goes through the audit log's redaction (PEM
private keys, ``--*-key``/``secret=`` values, BIND ``secret "..."``) and through every
redactor added with :func:`add_redactor` (the workbench adds its audit log's, which
knows the session's secrets, e.g. a TSIG secret read from its file).
"""

from __future__ import annotations

import contextlib
import logging
import logging.handlers
import os
from collections.abc import Callable
from pathlib import Path

from tui.core.audit import AuditLog
from tui.core.errors import UserError
from tui.core.paths import state_dir

MAX_BYTES = 1024 * 1024
"""A log file is rotated at this size."""
BACKUPS = 3
"""Rotated files kept (hardway.log.1 ... .3)."""
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
"""What ``--log-level`` accepts."""
DEFAULT_LEVEL = "INFO"

_BASE = AuditLog(Path(os.devnull))
_redactors: list[Callable[[str], str]] = [_BASE.redact]


def default_path() -> Path:
    """``$XDG_STATE_HOME/hardway/hardway.log`` (``~/.local/state`` by default)."""
    return state_dir() / "hardway.log"


def add_redactor(redact: Callable[[str], str]) -> Callable[[], None]:
    """Pass every log line through ``redact`` too; returns a function that stops it."""
    _redactors.append(redact)

    def remove() -> None:
        with contextlib.suppress(ValueError):
            _redactors.remove(redact)

    return remove


def redact(text: str) -> str:
    """``text`` with every known secret replaced (see the module docstring)."""
    for redactor in list(_redactors):
        text = redactor(text)
    return text


class RedactingFormatter(logging.Formatter):
    """A formatter whose output (message and traceback) is redacted."""

    def format(self, record: logging.LogRecord) -> str:
        """The formatted record, secrets replaced."""
        return redact(super().format(record))


class HardwayLogHandler(logging.handlers.RotatingFileHandler):
    """The handler :func:`configure` installs (recognised when configuring again)."""


def current_path() -> Path | None:
    """The log file in use (None before :func:`configure`)."""
    for handler in logging.getLogger().handlers:
        if isinstance(handler, HardwayLogHandler):
            return Path(handler.baseFilename)
    return None


def configure(level: str = DEFAULT_LEVEL, path: Path | None = None) -> Path:
    """Send log records of ``level`` and above to the rotated, redacted log file.

    Configuring again replaces the previous file handler (tests, a second app).

    Returns:
        The log file's path.

    Raises:
        UserError: an unknown level, or the file cannot be opened.
    """
    name = level.upper()
    if name not in LEVELS:
        raise UserError(f"--log-level {level!r} is not a level; use one of "
                        f"{', '.join(LEVELS)}.")
    path = Path(path) if path is not None else default_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        handler = HardwayLogHandler(path, maxBytes=MAX_BYTES, backupCount=BACKUPS,
                                    encoding="utf-8")
    except OSError as exc:
        raise UserError(f"Cannot write the log file {path}: {exc.strerror or exc}. Set "
                        "XDG_STATE_HOME to a writable directory.") from None
    with contextlib.suppress(OSError):
        path.chmod(0o600)
    handler.setFormatter(RedactingFormatter(
        "%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for old in [h for h in root.handlers if isinstance(h, HardwayLogHandler)]:
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(getattr(logging, name))
    # asyncssh logs every channel at INFO: only its warnings are worth a line
    logging.getLogger("asyncssh").setLevel(max(logging.WARNING, getattr(logging, name)))
    return path
