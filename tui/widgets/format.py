"""Small display formatters shared by widgets (one place, so snapshots can freeze them)."""

from __future__ import annotations


def format_duration(seconds: float) -> str:
    """``0.02 s``, ``12.3 s``, ``4 min 05 s``: how long a command took."""
    if seconds < 10:
        return f"{seconds:.2f} s"
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes} min {rest:02d} s"


def stable(text: str) -> str:
    """Free text about certificates as shown (identity; snapshot tests freeze it)."""
    return text
