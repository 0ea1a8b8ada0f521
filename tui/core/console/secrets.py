"""Secret redaction for what the console keeps on disk (history, transcripts).

Reuses :meth:`tui.core.audit.AuditLog.redact` (private-key PEM blocks, ``--password x``,
``--tsig-secret x``, ``secret=``/``password=``/``token=`` assignments, BIND ``secret "..."``
clauses and every secret registered on that log) and adds what typed commands and
terminal output often carry besides: HTTP bearer tokens (``Authorization: Bearer x``),
passwords inside URLs (``https://user:pass@host``) and ``curl -u user:pass``.

:class:`LineRedactor` works on a stream of lines, so a private key printed by ``cat``
is removed from its ``BEGIN`` line to its ``END`` line even though every line arrives
separately.
"""

from __future__ import annotations

import re
from collections.abc import Callable

from tui.core.audit import REDACTED, AuditLog

Redact = Callable[[str], str]
"""A function that returns its argument with secrets replaced."""

PRIVATE_KEY_REDACTED = "[REDACTED PRIVATE KEY]"

_BEARER = re.compile(r"(?P<key>\b(?:Bearer|Basic)\s+)(?P<value>[A-Za-z0-9._~+/=-]{8,})")
_URL_PASSWORD = re.compile(r"(?P<key>\b[a-z][a-z0-9+.-]*://[^\s/:@]+:)(?P<value>[^\s/@]+)(?=@)",
                           re.IGNORECASE)
_USER_OPTION = re.compile(r"(?P<key>(?:^|\s)(?:-u|--user)\s+[^\s:]+:)(?P<value>\S+)")
_PEM_BEGIN = re.compile(r"-----BEGIN ([A-Z0-9 ]*)PRIVATE KEY-----")


def _keep_key(match: re.Match[str]) -> str:
    return match.group("key") + REDACTED


_PATTERNS = AuditLog(AuditLog.default_path()).redact
"""The audit log's patterns (an AuditLog with no registered secrets; it never writes)."""


def default_redact() -> Redact:
    """The audit log's redaction (patterns only: no secrets registered)."""
    return _PATTERNS


def redact_text(text: str, base: Redact | None = None) -> str:
    """``text`` with every secret the console knows about replaced by ``[REDACTED]``.

    Args:
        text: any text (a command line, a block of output).
        base: an extra redaction applied first, typically ``fleet.audit.redact`` so the
            secrets registered on the audit log are removed too; the audit patterns and
            this module's patterns are always applied after it.
    """
    if base is not None and base is not _PATTERNS:
        text = base(text)
    text = _PATTERNS(text)
    text = _BEARER.sub(_keep_key, text)
    text = _URL_PASSWORD.sub(_keep_key, text)
    return _USER_OPTION.sub(_keep_key, text)


def contains_secret(text: str, base: Redact | None = None) -> bool:
    """True when :func:`redact_text` would change ``text``."""
    return redact_text(text, base) != text


class LineRedactor:
    """Redacts a stream of lines, including multi-line private-key blocks.

    Args:
        base: an extra redaction applied to each line (see :func:`redact_text`).
    """

    def __init__(self, base: Redact | None = None) -> None:
        self._base = base
        self._pem_end: str | None = None

    def line(self, text: str) -> str | None:
        """The redacted line, or None when the line is inside a private key and dropped.

        The ``BEGIN ... PRIVATE KEY`` line becomes ``[REDACTED PRIVATE KEY]``; the lines
        after it up to and including the matching ``END`` line are dropped.
        """
        if self._pem_end is not None:
            if self._pem_end in text:
                self._pem_end = None
            return None
        begin = _PEM_BEGIN.search(text)
        if begin is not None:
            end = f"-----END {begin.group(1)}PRIVATE KEY-----"
            if end not in text[begin.end():]:
                self._pem_end = end
                return text[:begin.start()] + PRIVATE_KEY_REDACTED
        return redact_text(text, self._base)
