"""Terminal emulation for console panes (no Textual here).

``Terminal`` turns a host's decoded output into styled lines with bounded
scrollback; ``encode_key`` turns key presses into what a terminal would send.
"""

from __future__ import annotations

from tui.core.term.cells import Run
from tui.core.term.keys import bracketed, encode_key
from tui.core.term.terminal import Terminal

__all__ = ["Run", "Terminal", "bracketed", "encode_key"]
