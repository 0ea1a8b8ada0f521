"""Garbage collection while the app starts: off until its first frame.

Everything the app makes while it imports its modules and builds its first screen lives
as long as the app, so collecting it is wasted work: ~50 ms of a 0.5 s start on a 2-core
machine (``bench/startup.py``), and frozen afterwards it is never walked again.
``hardway`` calls :func:`hold_until_first_frame` before it imports the engine; the app
calls :func:`first_frame_shown` at Textual's Ready, after which :mod:`tui.gc_policy` (the
console's quiet-moment collections) takes over.
"""

from __future__ import annotations

import gc

_held = False


def hold_until_first_frame() -> None:
    """No automatic collections until :func:`first_frame_shown` (the app's start-up)."""
    global _held
    if gc.isenabled():
        gc.disable()
        _held = True


def first_frame_shown() -> None:
    """Automatic collections again, if :func:`hold_until_first_frame` turned them off.

    What exists now is frozen first (``gc.freeze``): turned back on, the collector would
    otherwise walk every object of the start-up at once (20-30 ms, just before the first
    frame is written); frozen, they are never walked (the console's collector unfreezes
    them when it stops)."""
    if _held:
        gc.freeze()
        release()


def release() -> None:
    """Automatic collections again if they are still held: the app ended (or failed)
    before its first frame.  ``hardway`` calls it whatever happened."""
    global _held
    if _held:
        _held = False
        gc.enable()
