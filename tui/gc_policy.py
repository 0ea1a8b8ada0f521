"""Full garbage collections when the console is quiet, not in the middle of a flood.

CPython collects the oldest generation whenever enough objects survived the younger
ones.  With the widgets, SSH state and terminal scrollback of a busy console that walk
takes 30-70 ms, and a flood of output (which creates many short-lived objects per frame)
triggered several per second: each one a pause of every keystroke and frame.
:class:`QuietCollector` freezes what exists once the console is up (the app and its
widgets live as long as the process), turns automatic full collections off, and runs
them itself when nothing has been printed or typed for a moment -- or after
:data:`MAX_DEFER` seconds regardless, so memory stays bounded during endless output.
Young-generation collections (a millisecond or two) stay automatic.  :meth:`QuietCollector.stop`
(the console screen unmounting) undoes all of it: thresholds back, ``gc.unfreeze()``.

Start-up has a policy of its own, in :mod:`tui.core.startup_gc` (the command that starts
the app uses it before any view is imported).

The policy relies on CPython's three-generation collector (``gc.freeze``, the gen-2
threshold); it is tested on the Pythons ``requires-python`` claims.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Callable
from typing import Protocol

CHECK_INTERVAL = 0.5
"""Seconds between two looks at whether a full collection is due."""
QUIET = 1.0
"""Seconds without output or keys after which the console counts as quiet."""
MAX_DEFER = 30.0
"""A full collection waits at most this long for a quiet moment."""
NO_AUTOMATIC_FULL = 1_000_000
"""gen-2 threshold that keeps CPython from starting full collections itself."""


class _Timers(Protocol):
    def set_interval(self, interval: float, callback: Callable[[], None]) -> object: ...


class QuietCollector:
    """Runs full collections at quiet moments (see the module docstring).

    Args:
        timers: something with Textual's ``set_interval`` (the console screen).
        last_output: monotonic time of the newest output shown or key typed.
    """

    def __init__(self, timers: _Timers, last_output: Callable[[], float]) -> None:
        self._timers = timers
        self._last_output = last_output
        self._last_full = time.monotonic()
        self._previous: tuple[int, int, int] | None = None
        self.collections = 0

    def start(self) -> None:
        """Freeze what exists, take over full collections, start looking."""
        gc.collect()
        gc.freeze()
        self._previous = gc.get_threshold()
        first, second, _ = self._previous
        gc.set_threshold(first, second, NO_AUTOMATIC_FULL)
        self._last_full = time.monotonic()
        self._timers.set_interval(CHECK_INTERVAL, self.check)

    def stop(self) -> None:
        """Give full collections back to CPython and unfreeze what :meth:`start` froze
        (the console's widgets and shells are about to be released: frozen, they would
        never be collected)."""
        if self._previous is not None:
            gc.set_threshold(*self._previous)
            self._previous = None
            gc.unfreeze()

    def check(self) -> None:
        """Collect everything when the console is quiet, or when it has waited too long."""
        now = time.monotonic()
        quiet = now - self._last_output() >= QUIET
        if gc.get_count()[2] == 0 and now - self._last_full < MAX_DEFER:
            return
        if quiet or now - self._last_full >= MAX_DEFER:
            gc.collect()
            self._last_full = now
            self.collections += 1
