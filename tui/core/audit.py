"""Audit log: one JSON line per remote command per host and per remote file write.

Records go to ``$XDG_STATE_HOME/hardway/audit.jsonl`` (default
``~/.local/state/hardway/audit.jsonl``) or a path given by the user (``--audit FILE``).
Every text field is redacted before it is written: private-key PEM blocks,
``--tsig-secret``/``secret=``/``password=`` values, BIND-style ``secret "..."`` clauses and
every string registered with :meth:`AuditLog.add_secret`.
"""

from __future__ import annotations

import getpass
import json
import os
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REDACTED = "[REDACTED]"
MIN_SECRET_LENGTH = 4
"""Registered secrets shorter than this are ignored (they would redact ordinary text)."""

_PEM_PRIVATE = re.compile(
    r"-----BEGIN ([A-Z0-9 ]*)PRIVATE KEY-----.*?(?:-----END \1PRIVATE KEY-----|\Z)",
    re.DOTALL)
_OPTION_VALUE = re.compile(
    r"""(?P<key>--?(?:tsig-secret|secret|password|passwd|token)(?:=|\s+))"""
    r"""(?P<value>'[^']*'|"[^"]*"|\S+)""", re.IGNORECASE)
_ASSIGNMENT = re.compile(
    r"""(?P<key>\b[\w.-]*(?:secret|password|passwd|token)\s*[=:]\s*)"""
    r"""(?P<value>'[^']*'|"[^"]*"|[^\s;,&|]+)""", re.IGNORECASE)
_BIND_SECRET = re.compile(r"""(?P<key>\bsecret\s+)(?P<value>"[^"]*")""", re.IGNORECASE)


def _keep_key(match: re.Match[str]) -> str:
    return match.group("key") + REDACTED


class AuditLog:
    """Append-only JSON-lines record of remote commands and file writes.

    Args:
        path: the log file; its directory is created (0700) on first write.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._secrets: set[str] = set()
        self._user = _local_user()

    @staticmethod
    def default_path() -> Path:
        """``$XDG_STATE_HOME/hardway/audit.jsonl`` (``~/.local/state`` by default)."""
        state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
        return Path(state) / "hardway" / "audit.jsonl"

    def add_secret(self, secret: str) -> None:
        """Never write ``secret`` (e.g. a TSIG secret read from its file) to the log."""
        secret = secret.strip()
        if len(secret) >= MIN_SECRET_LENGTH:
            self._secrets.add(secret)

    def redact(self, text: str) -> str:
        """Return ``text`` with every known kind of secret replaced by ``[REDACTED]``."""
        for secret in sorted(self._secrets, key=len, reverse=True):
            text = text.replace(secret, REDACTED)
        text = _PEM_PRIVATE.sub("[REDACTED PRIVATE KEY]", text)
        text = _OPTION_VALUE.sub(_keep_key, text)
        text = _BIND_SECRET.sub(_keep_key, text)
        return _ASSIGNMENT.sub(_keep_key, text)

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
        if not self.path.parent.exists():
            self.path.parent.mkdir(parents=True, mode=0o700, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, line.encode("utf-8"))
        finally:
            os.close(fd)


def _local_user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return str(os.getuid())
