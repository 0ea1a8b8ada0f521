"""Secret redaction for what the console keeps on disk (history, transcripts).

A thin view of the one redactor, :mod:`tui.core.redact` (the audit log, history and
transcripts share it): :func:`redact_text` applies an extra redaction (typically
``audit.redact``, which carries the inventory's registered secrets) and the forms.
"""

from __future__ import annotations

from tui.core.redact import PATTERNS, PRIVATE_KEY_REDACTED, LineRedactor, Redact, redact

__all__ = ["PRIVATE_KEY_REDACTED", "LineRedactor", "Redact", "contains_secret",
           "default_redact", "redact_text"]


def default_redact() -> Redact:
    """The forms-only redaction (no secrets registered)."""
    return PATTERNS.redact


def redact_text(text: str, base: Redact | None = None) -> str:
    """``text`` with every secret the console knows about replaced by ``[REDACTED]``.

    Args:
        text: any text (a command line, a block of output).
        base: a redaction applied first, typically ``audit.redact`` (registered secrets
            and the forms); the forms are always applied after it.
    """
    if base is not None and base is not PATTERNS.redact:
        text = base(text)
    return redact(text)


def contains_secret(text: str, base: Redact | None = None) -> bool:
    """True when :func:`redact_text` would change ``text``."""
    return redact_text(text, base) != text
