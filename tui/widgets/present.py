"""Show one widget's change on screen now, ahead of Textual's next frame.

Textual shows a widget's change after three loop turns: the widget's ``refresh()`` is
turned into an ``Update`` message on its idle, the screen adds it to the dirty set on
its own idle and resumes the 60 Hz update timer, and the timer composes the frame. While
hosts flood output, every turn waits behind terminal ingest and frames of the flooding
panes (10-30 ms each on two shared cores), so a key's echo in the broadcast bar or in an
idle pane took up to 60-90 ms to reach the screen.

:func:`present_now` composes a partial frame holding only the given widget's dirty
regions, straight away, the way ``Screen._on_timer_update`` does for its dirty set; other
dirty widgets (a flooding pane) keep waiting for the regular frame.  Only the keys' own
echoes use it (a key typed into the bar; a pane's small output within half a second of a
key typed into it), so its extra frames follow the user's typing, never a host's output
alone.  It uses Textual internals, so it lives in :mod:`tui.widgets.internals` (re-exported
here); ``tests/unit/test_present.py`` exercises this path on every run.
"""

from __future__ import annotations

from tui.widgets.internals import present_now

__all__ = ["present_now"]
