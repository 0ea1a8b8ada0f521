"""Where hardway keeps its state on this machine, and how paths are shown to people."""

from __future__ import annotations

import os
from pathlib import Path


def state_dir() -> Path:
    """``$XDG_STATE_HOME/hardway`` (``~/.local/state/hardway`` by default): the audit log,
    history, known hosts record, transcripts and the log file."""
    state = os.environ.get("XDG_STATE_HOME") or str(Path.home() / ".local" / "state")
    return Path(state) / "hardway"


def shown(path: str | Path) -> str:
    """``path`` as a person reads it: the home directory written ``~``."""
    text = str(path)
    home = str(Path.home())
    if home not in ("", "/") and (text == home or text.startswith(home + "/")):
        return "~" + text[len(home):]
    return text
