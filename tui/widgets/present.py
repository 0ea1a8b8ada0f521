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
alone.  It uses Textual internals (``_compositor``, ``_display``): Textual is pinned in
``pyproject.toml``, and ``tests/unit/test_present.py`` exercises this path on every run.
"""

from __future__ import annotations

from textual.widget import Widget


def present_now(widget: Widget) -> bool:
    """Compose and display a frame with ``widget``'s pending repaint at once.

    Args:
        widget: a mounted, visible widget that has just called ``refresh()``.

    Returns:
        True when a frame was displayed; False when the normal route must do it (the
        widget is not on the current screen, a layout or scroll is pending, updates are
        batched, or the app runs inline).
    """
    app = widget.app
    if not widget.is_mounted or app._batch_count or app.is_inline:
        return False
    screen = widget.screen
    if (screen is not app.screen or not screen.is_current or screen._layout_required
            or screen._scroll_required or screen._repaint_required
            or screen._recompose_required):
        return False
    compositor = screen._compositor
    if widget not in compositor.visible_widgets:
        return False
    compositor.update_widgets({widget})
    if not compositor._dirty_regions:
        return False
    app._display(screen, compositor.render_update(screen_stack=app._background_screens))
    return True
