"""Every use of a private Textual name, in one place.

hardway reaches past Textual's public API in a few spots, each for a measured reason
(keystroke latency and frame cost while hosts flood output, and one failure boundary).
They all live here, so that a Textual upgrade breaks one module, and
``tests/unit/test_internals.py`` has one test per name below that fails loudly (naming
the name) when Textual renames or changes it.  Textual is pinned in ``pyproject.toml``.

Names used (the test file checks each):

* ``App._post_message``: :class:`DirectKeysApp` sees a key before Textual queues it.
* ``MessagePump._message_queue``: :func:`queue_empty` (no key jumps the queue).
* ``App._handle_exception``: :class:`DirectKeysApp` turns a failed worker into a
  notification instead of an exit.
* ``Input._watch_value``: :class:`QuietInput` stores the virtual size without a layout.
* ``Input._restart_blink``: :func:`restart_blink`.
* ``Widget._check_disabled``: :func:`scroll_disabled`.
* ``Widget._styles_cache``: :func:`styles_cache`.
* ``rich.style.Style._link_id``: :func:`has_link`.
* ``Strip``'s slots (``_segments``, ``_cell_length``, ``_divide_cache``,
  ``_render_cache``, ``_link_ids``, ``_cell_count`` and the lazy caches):
  :func:`init_strip`, :data:`STRIP_LAZY_CACHES`.
* ``Screen._compositor_refresh``, ``Screen._repaint_required``, ``App._batch_count``:
  :class:`BatchAwareScreen` (no frame rendered only to be dropped).
* ``Screen._css_update_count``, ``App._css_update_count``: :func:`styles_are_current`
  (a screen built for a mode skips the whole-stylesheet re-parse ``App._init_mode``
  does for it).
* ``Screen._on_screen_resume``: :class:`BatchAwareScreen` (no second styling of a screen
  on its first showing).
* ``App._batch_count``, ``App._display``, ``App._background_screens``,
  ``Screen._compositor``, ``Screen._layout_required``, ``Screen._scroll_required``,
  ``Screen._repaint_required``, ``Screen._recompose_required``,
  ``Compositor._dirty_regions``: :func:`present_now`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.segment import Segment
from rich.style import Style
from textual.app import App
from textual.cache import FIFOCache
from textual.geometry import Size
from textual.message import Message
from textual.message_pump import MessagePump
from textual.screen import Screen
from textual.strip import Strip
from textual.widget import Widget
from textual.widgets import Input

if TYPE_CHECKING:
    from textual import events

# -- the app: keys before the queue, failures of workers ------------------------------------


class DirectKeysApp(App[int]):
    """An App with two public hooks over Textual internals.

    * :meth:`intercept_key` sees every key before Textual queues it (the console's direct
      key route, see :func:`tui.app.typed_now`);
    * :meth:`worker_failed` receives a failed worker's exception (``WorkerFailed``) and
      says whether it was handled; unhandled ones exit the app as Textual does.
    """

    def intercept_key(self, event: events.Key) -> bool:
        """Handle ``event`` now (True), or let it take Textual's queues (False)."""
        return False

    def worker_failed(self, error: BaseException) -> bool:
        """Report a worker's failure; True when handled (the app keeps running)."""
        return False

    async def _post_message(self, message: Message) -> bool:
        from textual import events

        if isinstance(message, events.Key) and self.intercept_key(message):
            return True
        return await super()._post_message(message)

    def _handle_exception(self, error: Exception) -> None:
        from textual.worker import WorkerFailed

        if isinstance(error, WorkerFailed) and self.worker_failed(error.error):
            return
        super()._handle_exception(error)


class BatchAwareScreen(Screen[None]):
    """A Screen that renders no frame while the app batches updates.

    Textual renders a screen's frame even inside ``App.batch_update`` (the whole app
    start-up is one), then ``App._display`` drops it, yet its regions count as painted.
    The first screen was rendered twice before its first frame (~20 ms), and what only the
    dropped frame painted (the panes' titles) reached the terminal when it next changed.
    Here the render waits: the screen asks for a whole repaint, which it does on its
    first update after the batch.
    """

    _shown_before = False

    def _on_screen_resume(self, event: events.ScreenResume) -> None:
        """The first showing of a screen whose styles are current does not style every
        node again: each got its styles as it mounted (~10 ms before the console's first
        frame).  Later showings refresh them as Textual does."""
        if not self._shown_before and self._css_update_count == self.app._css_update_count:
            event.refresh_styles = False
        self._shown_before = True
        super()._on_screen_resume(event)

    def _compositor_refresh(self) -> None:
        if self.app._batch_count and not self.app.is_inline:
            self._repaint_required = True
            return
        super()._compositor_refresh()


def styles_are_current(screen: Screen[Any], app: App[Any]) -> None:
    """Tell Textual that ``screen`` (just built, not yet mounted) needs no CSS refresh.

    ``App._init_mode`` calls ``App.refresh_css`` for every screen whose CSS update count
    differs from the app's, and a new screen's is always -1: each mode's first opening
    re-parsed every stylesheet from scratch (``Stylesheet.reparse`` keeps no cache), ~10 ms
    before the console's first frame.  A new screen's widgets take their styles from the
    stylesheet when they mount, and that stylesheet holds the current theme's variables
    (``HardwayApp.__init__`` sets them; a theme change refreshes the CSS itself), so
    there is nothing to refresh.  A screen with its own ``CSS`` or ``CSS_PATH`` still has
    it loaded and parsed by ``App._load_screen_css``.
    """
    screen._css_update_count = app._css_update_count


def queue_empty(node: MessagePump) -> bool:
    """True when ``node`` has no message waiting in its queue."""
    return node._message_queue.empty()


# -- widgets ----------------------------------------------------------------------------------


class QuietInput(Input):
    """An Input whose value changes never lay out the screen.

    Textual's Input assigns its ``virtual_size`` (a layout reactive) in ``_watch_value``;
    in the console that re-laid out every pane on a key (30-70 ms while hosts stream).
    The bar's size never depends on its text, so this hook stores the new size without
    the layout and then runs Input's own watcher unchanged: ``Input.Changed`` is posted,
    validation runs and the cursor follows the value (``value = ""`` puts it at 0).
    """

    def _watch_value(self, value: str) -> None:
        size = Size(self.content_width, 1)
        if size != self.virtual_size:
            self.set_reactive(Input.virtual_size, size)
        super()._watch_value(value)


def restart_blink(widget: Input) -> None:
    """Show the cursor and restart its blink cycle (as Input does on a key)."""
    widget._restart_blink()


def scroll_disabled(widget: Widget) -> bool:
    """True when ``widget`` or an ancestor is disabled (no scrolling then)."""
    return bool(widget._check_disabled())


def styles_cache(widget: Widget) -> Any:
    """``widget``'s StylesCache (lines rendered with its borders and padding)."""
    return widget._styles_cache


def has_link(style: Style) -> bool:
    """True when ``style`` carries a hyperlink id (a hover style over a link)."""
    return bool(style._link_id)


# -- strips -----------------------------------------------------------------------------------

STRIP_LAZY_CACHES: dict[str, int] = {
    "_crop_cache": 16,
    "_style_cache": 16,
    "_filter_cache": 4,
    "_line_length_cache": 4,
    "_crop_extend_cache": 4,
    "_offsets_cache": 4,
}
"""Strip's cache slots and their sizes (as ``Strip.__init__`` makes them)."""
STRIP_EAGER_SLOTS = ("_segments", "_cell_length", "_divide_cache", "_render_cache",
                     "_link_ids", "_cell_count")
"""Strip's other slots, set by :func:`init_strip`."""


def init_strip(strip: Strip, segments: list[Segment], cell_length: int | None) -> None:
    """Set ``strip``'s slots as ``Strip.__init__`` does, without building its caches
    (the compositor divides every strip, so that one cache is made)."""
    strip._segments = segments
    strip._cell_length = cell_length
    strip._divide_cache = FIFOCache(4)
    strip._render_cache = None
    strip._link_ids = None
    strip._cell_count = None


# -- frames -----------------------------------------------------------------------------------


def present_now(widget: Widget) -> bool:
    """Compose and display a frame with ``widget``'s pending repaint at once.

    Textual shows a change after three loop turns (refresh -> Update message -> the
    screen's dirty set -> the update timer).  This composes a partial frame holding only
    ``widget``'s dirty regions straight away, as ``Screen._on_timer_update`` does for its
    dirty set (see :mod:`tui.widgets.present`).

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
