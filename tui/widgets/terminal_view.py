"""TerminalView: a Line API view of a :class:`~tui.core.term.Terminal`.

Output is fed with :meth:`TerminalView.feed`, which only updates the Terminal and
arms a timer: the view repaints at most once per ``REFRESH_INTERVAL`` however many
chunks arrive.  Only visible lines are rendered, each cached as a Strip under the
Terminal's line key and the width.  The view follows the tail unless the user
scrolled back.  Key presses become the bytes a terminal would send and are posted as
:class:`TerminalView.Input`; size changes are posted as :class:`TerminalView.Resized`.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Hashable, Iterable
from dataclasses import dataclass

from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.cache import LRUCache
from textual.geometry import Region, Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.timer import Timer

from tui.core.term import Terminal, bracketed, encode_key

_CURSOR = Style(reverse=True)
_CURSOR_ON_REVERSE = Style(reverse=False)


STRIP_CACHE = 256
"""Rendered rows kept per view.  A few screens' worth: every Strip carries Textual's caches
(and the cropped copies made from it), so thousands of them make each full garbage
collection walk hundreds of thousands of objects -- pauses of 0.2-0.3 s during a flood."""


class TerminalView(ScrollView, can_focus=True):
    """Shows a Terminal's lines; turns key presses into input for the remote program.

    Args:
        terminal: the emulator to show (a new 80x24 one by default).
        resize_terminal: resize the Terminal to the view's size (and post
            :class:`Resized`) whenever the view changes size.
        reserved_keys: key names the view lets through to the app's bindings
            instead of sending them to the host.
    """

    DEFAULT_CSS = """
    TerminalView {
        overflow-x: hidden;
        overflow-y: scroll;
        scrollbar-size-vertical: 1;
        background: $surface;
        color: $foreground;
    }
    """

    REFRESH_INTERVAL = 0.05
    """Seconds between repaints while output is arriving."""
    ECHO_CHARS = 4096
    """Output this small arriving after a repaint (an echo, a prompt) is shown at once."""
    FLOOD_CHARS = 32 * 1024
    """A view fed more than this since its last repaint is flooding..."""
    FLOOD_INTERVAL = 0.15
    """...and repaints at most this often: nobody reads a flood at 20 frames a second, and
    each frame of it costs the UI loop time that keystrokes and other panes need."""

    @dataclass
    class Input(Message):
        """Text to send to the host (keystrokes, pastes, terminal replies)."""

        view: TerminalView
        data: str

        @property
        def control(self) -> TerminalView:
            """The view that produced the input."""
            return self.view

    @dataclass
    class Resized(Message):
        """The view's size in cells changed; the remote PTY should follow."""

        view: TerminalView
        columns: int
        rows: int

        @property
        def control(self) -> TerminalView:
            """The view that changed size."""
            return self.view

    def __init__(self, terminal: Terminal | None = None, *, resize_terminal: bool = True,
                 reserved_keys: Iterable[str] = (), name: str | None = None,
                 id: str | None = None, classes: str | None = None) -> None:
        super().__init__(name=name, id=id, classes=classes)
        self.terminal = terminal if terminal is not None else Terminal()
        self.resize_terminal = resize_terminal
        self.reserved_keys = frozenset(reserved_keys)
        self._strips: LRUCache[tuple[Hashable, int, Style], Strip] = LRUCache(STRIP_CACHE)
        self._timer: Timer | None = None
        self._follow = True
        self._first_line = self.terminal.first_line
        self._painted = -1
        self._alt = self.terminal.alt_screen
        self._reported: tuple[int, int] | None = None
        self._frame: tuple[Style, int, tuple[int, int] | None] | None = None
        self._fast = False
        self._fed = 0
        self._synced = 0.0
        self._soon = False
        self.sink: Callable[[str], object] | None = None
        """Where input goes directly (the console's per-host send), skipping the
        :class:`Input` message; None posts the message."""

    # ---------------------------------------------------------------- output
    def feed(self, data: str) -> None:
        """Append output from the host; the repaint happens on the next timer tick (right
        after the current batch of feeds for a little output after a quiet spell)."""
        terminal = self.terminal
        terminal.feed(data)
        quiet = not self._fed and len(data) <= self.ECHO_CHARS
        self._fed += len(data)
        if (quiet and not self._soon and self.is_mounted
                and time.monotonic() - self._synced >= self.REFRESH_INTERVAL):
            # an echo after a quiet spell: show it once this batch of feeds is in, not on
            # the next tick
            self._soon = True
            asyncio.get_running_loop().call_soon(self._sync_soon)
        replies = terminal.take_replies()
        if replies:
            self._send(replies)

    def on_mount(self) -> None:
        """Repaint at most every REFRESH_INTERVAL while output arrives.

        A repeating interval (rather than a one-shot timer armed by ``feed``) cannot be
        lost: an idle tick costs one version comparison in :meth:`sync`.
        """
        self._timer = self.set_interval(self.REFRESH_INTERVAL, self._tick)

    def _sync_soon(self) -> None:
        self._soon = False
        if self.is_mounted:
            self.sync()

    def _tick(self) -> None:
        """The repaint timer: :meth:`sync`, less often while the view is flooding."""
        if (self._fed > self.FLOOD_CHARS
                and time.monotonic() - self._synced < self.FLOOD_INTERVAL):
            return
        self.sync()

    def sync(self) -> None:
        """Show everything fed so far now (scroll size, tail following, repaint)."""
        terminal = self.terminal
        if terminal.version == self._painted:
            return
        self._fed = 0
        self._synced = time.monotonic()
        self._painted = terminal.version
        dropped = terminal.first_line - self._first_line
        self._first_line = terminal.first_line
        if terminal.alt_screen != self._alt:
            self._alt = terminal.alt_screen
            self._follow = True
        follow = self._follow
        self.virtual_size = Size(self.scrollable_content_region.width, terminal.lines_total)
        if follow:
            self.scroll_to(y=self.max_scroll_y, animate=False, immediate=True)
        elif dropped:
            self.scroll_to(y=max(0, self.scroll_y - dropped), animate=False, immediate=True)
        self._follow = follow
        self.refresh()

    @property
    def following(self) -> bool:
        """The view sticks to the newest output (the user has not scrolled back)."""
        return self._follow

    def follow(self) -> None:
        """Jump to the newest output and keep following it."""
        self._follow = True
        self.scroll_to(y=self.max_scroll_y, animate=False, immediate=True)

    def scroll_to_line(self, index: int) -> None:
        """Scroll so line ``index`` (e.g. a search hit) is in view and stop following."""
        self._follow = False
        target = max(0, index - self.scrollable_content_region.height // 2)
        self.scroll_to(y=min(target, self.max_scroll_y), animate=False, immediate=True)

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        """Track whether the user left the tail."""
        super().watch_scroll_y(old_value, new_value)
        self._follow = round(new_value) >= self.max_scroll_y

    # -------------------------------------------------------------- rendering
    def render_lines(self, crop: Region) -> list[Strip]:
        """Render a frame, looking up the style and geometry once rather than per row.

        Without border, padding, outline, tint, hatch or opacity (the usual case) the
        cached rows are the final lines: Textual's per-line styling pass, which would copy
        every row of a flooding terminal on every frame, is skipped.
        """
        self._frame = (self.rich_style, self.scrollable_content_region.width,
                       self.terminal.cursor if self.has_focus else None)
        try:
            if self._plain():
                return self._render_plain(crop)
            self._fast = False
            return super().render_lines(crop)
        finally:
            self._frame = None

    def _plain(self) -> bool:
        """True when Textual's styling pass would leave the rows as they are."""
        styles = self.styles
        return (not any(edge for edge, _ in styles.border)
                and not any(edge for edge, _ in styles.outline)
                and not any(styles.padding) and not styles.tint.a
                and styles.text_opacity == 1.0 and self.opacity == 1.0
                and not (styles.has_rule("hatch") and styles.hatch != "none")
                and not self.hover_style._link_id)

    def _render_plain(self, crop: Region) -> list[Strip]:
        """The rows of ``crop`` as Textual's styling pass would give them (see render_lines)."""
        if not self._fast:  # lines the styles cache kept may be stale when it is used again
            self._fast = True
            self._styles_cache.clear()
        base_background, background = self.background_colors
        inner = self._styles_cache.get_inner_outer(base_background, background)[0].rich_style
        width, height = self.content_region.size
        filters = self.get_line_filters()
        strips: list[Strip] = []
        for y in crop.line_range:
            if y < height:
                strip = self.render_line(y).adjust_cell_length(width, inner)
            else:
                strip = Strip.blank(width, inner)
            for line_filter in filters:
                strip = strip.apply_filter(line_filter, background)
            strips.append(strip)
        if crop.column_span != (0, width):
            x1, x2 = crop.column_span
            strips = [strip.crop(x1, x2) for strip in strips]
        return strips

    def render_line(self, y: int) -> Strip:
        """One visible row: a cached Strip of the Terminal line plus the cursor."""
        _, scroll_y = self.scroll_offset
        index = scroll_y + y
        terminal = self.terminal
        frame = self._frame
        if frame is None:
            frame = (self.rich_style, self.scrollable_content_region.width,
                     terminal.cursor if self.has_focus else None)
        base, width, cursor = frame
        if index >= terminal.lines_total or width <= 0:
            return Strip.blank(max(width, 0), base)
        key = (terminal.line_key(index), width, base)
        strip = self._strips.get(key)
        if strip is None:
            segments = [Segment(text, base + style if style is not None else base)
                        for text, style in terminal.line(index) if text]
            strip = Strip(segments).crop_extend(0, width, base)
            self._strips.set(key, strip)
        if cursor is not None and cursor[0] == index:
            strip = self._with_cursor(strip, min(cursor[1], width - 1))
        return strip

    @staticmethod
    def _with_cursor(strip: Strip, column: int) -> Strip:
        left, cell, right = strip.divide([column, column + 1, strip.cell_length])
        segments = []
        for segment in cell:
            style = segment.style
            mark = _CURSOR_ON_REVERSE if style is not None and style.reverse else _CURSOR
            segments.append(Segment(segment.text, (style or Style()) + mark))
        return Strip.join([left, Strip(segments, cell.cell_length), right])

    def visible_text(self) -> list[str]:
        """The rows currently on screen as plain text (tests, screen readers)."""
        height = self.scrollable_content_region.height
        top = round(self.scroll_y)
        terminal = self.terminal
        return [terminal.line_text(i) if i < terminal.lines_total else ""
                for i in range(top, top + height)]

    # ------------------------------------------------------------------ input
    def on_key(self, event: events.Key) -> None:
        """Send the key to the host (unless it is reserved for the app).

        Shift+PageUp / Shift+PageDown scroll the scrollback, as in xterm, and are not sent.
        """
        if event.key in self.reserved_keys:
            return
        if event.key in ("shift+pageup", "shift+pagedown"):
            event.stop()
            event.prevent_default()
            page = max(1, self.scrollable_content_region.height - 1)
            step = -page if event.key == "shift+pageup" else page
            self.scroll_to(y=max(0, min(self.max_scroll_y, round(self.scroll_y) + step)),
                           animate=False, immediate=True)
            return
        data = encode_key(event.key, event.character,
                          app_cursor=self.terminal.app_cursor_keys)
        if data is None:
            return
        event.stop()
        event.prevent_default()
        self._send(data)

    def on_paste(self, event: events.Paste) -> None:
        """Send pasted text, bracketed when the program asked for it."""
        event.stop()
        text = event.text.replace("\r\n", "\r").replace("\n", "\r")
        if self.terminal.bracketed_paste:
            text = bracketed(text)
        self._send(text)

    def _send(self, data: str) -> None:
        """Hand input to :attr:`sink` now, or post it as an :class:`Input` message."""
        sink = self.sink
        if sink is not None:
            sink(data)
        else:
            self.post_message(self.Input(self, data))

    def on_focus(self) -> None:
        """Show the cursor."""
        self.refresh()

    def on_blur(self) -> None:
        """Hide the cursor."""
        self.refresh()

    # ----------------------------------------------------------------- sizing
    def on_resize(self, event: events.Resize) -> None:
        """Follow the new size: resize the Terminal and tell the console."""
        region = self.scrollable_content_region
        size = (region.width, region.height)
        if size[0] <= 0 or size[1] <= 0 or size == self._reported:
            return
        self._reported = size
        if self.resize_terminal:
            self.terminal.resize(*size)
        self.post_message(self.Resized(self, *size))
        self._painted = -1
        self.sync()

    def on_unmount(self) -> None:
        """Stop the repaint interval."""
        if self._timer is not None:
            self._timer.stop()
            self._timer = None
