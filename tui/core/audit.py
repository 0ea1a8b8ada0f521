"""Audit log: one JSON line per remote command per host and per remote file write.

Records go to ``$XDG_STATE_HOME/hardway/audit.jsonl`` (default
``~/.local/state/hardway/audit.jsonl``) or a path given by the user (``--audit FILE``).
Every text field is redacted before it is written by the one redactor
(:mod:`tui.core.redact`): every secret form it knows and every secret registered with
:meth:`AuditLog.add_secret` or :meth:`AuditLog.add_inventory_secrets`.  The console's
history and transcripts use the same redactor (``audit.redact``).  :meth:`AuditLog.check`
proves the file can be appended to before a command runs.
"""

from __future__ import annotations

import contextlib
import errno
import getpass
import json
import os
import stat
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tui.core.errors import UserError
from tui.core.inventory.safefile import kind
from tui.core.paths import state_dir
from tui.core.redact import MIN_SECRET_LENGTH, REDACTED, Redactor

if TYPE_CHECKING:
    from tui.core.inventory.model import Inventory

__all__ = ["MIN_SECRET_LENGTH", "REDACTED", "AuditLog", "AuditUnwritable"]


class AuditUnwritable(UserError):
    """The audit log cannot be written: the command must not run unrecorded."""


class AuditLog:
    """Append-only JSON-lines record of remote commands and file writes.

    Args:
        path: the log file; its directory is created (0700) on first write.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.redactor = Redactor()
        """The redactor every sink of this session shares."""
        self._user = _local_user()

    @classmethod
    def for_inventory(cls, inventory: Inventory, path: Path | None = None, *,
                      pki: Path | None = None, check: bool = True) -> AuditLog:
        """The audit log of a session on ``inventory``: checked and knowing its secrets.

        Args:
            inventory: its TSIG secret and encryption key are registered for redaction.
            path: the log file (default :meth:`default_path`).
            pki: the PKI directory holding ``encryption-config.yaml`` (default ``pki/``
                next to the inventory).
            check: refuse now when the file cannot be written (see :meth:`check`).

        Raises:
            AuditUnwritable: ``check`` and the log cannot be written.
        """
        audit = cls(path or cls.default_path())
        if check:
            audit.check()
        audit.add_inventory_secrets(inventory, pki)
        return audit

    @staticmethod
    def default_path() -> Path:
        """``$XDG_STATE_HOME/hardway/audit.jsonl`` (``~/.local/state`` by default)."""
        return state_dir() / "audit.jsonl"

    def add_secret(self, secret: str) -> None:
        """Never write ``secret`` (e.g. a TSIG secret read from its file) to the log."""
        self.redactor.add_secret(secret)

    def add_inventory_secrets(self, inventory: Inventory, pki: Path | None = None) -> None:
        """Register the inventory's secrets (TSIG secret, encryption key) for redaction."""
        self.redactor.add_inventory(inventory, pki)

    def redact(self, text: str) -> str:
        """Return ``text`` with every known kind of secret replaced by ``[REDACTED]``."""
        return self.redactor.redact(text)

    def check(self) -> None:
        """Make sure records can be appended, before anything runs.

        The file is opened for appending as :meth:`record` does (a FIFO without a reader
        is refused instead of waiting); a special file other than ``/dev/null`` (say
        ``/dev/full``) is refused, and a small file written and removed beside a regular
        log shows whether the disk is full.

        Raises:
            AuditUnwritable: the log cannot be written, with one clear line.
        """
        path = self.path
        try:
            if path.is_dir():
                raise IsADirectoryError(errno.EISDIR, "it is a directory")
            if not path.parent.exists():
                path.parent.mkdir(parents=True, mode=0o700, exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NONBLOCK, 0o600)
            try:
                info = os.fstat(fd)
            finally:
                os.close(fd)
            if stat.S_ISREG(info.st_mode):
                _probe_space(path)
            elif os.path.realpath(path) != os.devnull:
                raise OSError(errno.EINVAL, f"it is {kind(info.st_mode)}, not a regular file")
        except OSError as exc:
            reason = exc.strerror or str(exc)
            if exc.errno == errno.ENXIO:
                reason = "it is a named pipe (FIFO) nobody reads"
            raise AuditUnwritable(
                f"the audit log {path} cannot be written ({reason}); nothing was run. Pass "
                "--audit FILE with a writable file, or free space on its disk.") from None

    def record(self, *, host: str, kind: str, status: int | None, duration: float,
               command: str | None = None, path: str | None = None,
               **details: Any) -> dict[str, Any]:
        """Append one record and return it (as written).

        Args:
            host: inventory name of the host.
            kind: ``exec`` (a command), ``put`` (a file write) or ``hostkey`` (a recorded key).
            status: remote exit status (0 for a successful write; None when none).
            duration: seconds.
            command: the command as run (after substitution), redacted.
            path: the remote path written, for ``put``.
            details: extra JSON-serialisable fields (error, signal, remote_user, ...);
                string values are redacted too.
        """
        entry: dict[str, Any] = {
            "time": datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "host": host,
            "kind": kind,
        }
        if command is not None:
            entry["command"] = self.redact(command)
        if path is not None:
            entry["path"] = path
        entry["status"] = status
        entry["duration"] = round(duration, 3)
        entry["user"] = self._user
        entry.update(self._clean(details))
        self._append(entry)
        return entry

    def _clean(self, details: Mapping[str, Any]) -> dict[str, Any]:
        return {key: self.redact(value) if isinstance(value, str) else value
                for key, value in details.items() if value is not None}

    def _append(self, entry: Mapping[str, Any]) -> None:
        line = json.dumps(entry, ensure_ascii=False, separators=(",", ":")) + "\n"
        try:
            if not self.path.parent.exists():
                self.path.parent.mkdir(parents=True, mode=0o700, exist_ok=True)
            fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NONBLOCK,
                         0o600)
            try:
                os.write(fd, line.encode("utf-8"))
            finally:
                os.close(fd)
        except OSError as exc:
            raise AuditUnwritable(
                f"the audit log {self.path} cannot be written ({exc.strerror or exc}); the "
                "command ran but is not recorded. Free space on its disk or pass --audit "
                "FILE.") from None


def _probe_space(path: Path) -> None:
    """Write and remove a small file beside ``path`` (a full disk fails here)."""
    probe = path.parent / f".{path.name}.probe-{os.getpid()}"
    try:
        fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError:
        return  # a directory we may not create files in: the append itself was allowed
    try:
        os.write(fd, b"x" * 4096)
        os.fsync(fd)
    finally:
        os.close(fd)
        with contextlib.suppress(OSError):
            os.unlink(probe)


def _local_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())
