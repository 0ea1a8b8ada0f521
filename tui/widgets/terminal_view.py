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
from typing import NamedTuple

from rich.cells import cell_len
from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.cache import LRUCache
from textual.color import Color
from textual.filter import LineFilter
from textual.geometry import Region, Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip
from textual.timer import Timer

from tui.core.term import Terminal, bracketed, encode_key
from tui.widgets.internals import has_link, present_now, scroll_disabled, styles_cache
from tui.widgets.strips import LazyStrip

_CURSOR = Style(reverse=True)
_CURSOR_ON_REVERSE = Style(reverse=False)


class _Frame(NamedTuple):
    """What the rows of one frame share (see :meth:`TerminalView._frame_info`)."""

    base: Style
    columns: int
    thumb: tuple[int, int]
    """Rows [start, end) of the scroll indicator's thumb (empty: nothing to scroll)."""
    marks: tuple[Style, Style]
    """The indicator's track and thumb styles."""
    cursor: tuple[int, int] | None
    top: int
    """The Terminal line shown on the first row."""


def _same(style: Style) -> Style:
    return style


def _with_cursor(segments: list[Segment], column: int, columns: int) -> list[Segment]:
    """``segments`` (``columns`` cells) with the cell at ``column`` shown reversed."""
    left, cell, right = Segment.divide(segments, [column, column + 1, columns])
    marked = []
    for segment in cell:
        style = segment.style
        mark = _CURSOR_ON_REVERSE if style is not None and style.reverse else _CURSOR
        marked.append(Segment(segment.text, (style or Style()) + mark))
    return [*left, *marked, *right]


INDICATOR = 1
"""Columns of the scroll indicator drawn at the right of every row.  It is part of each
row's Strip instead of a Textual scrollbar widget: a scrollbar is a region of its own,
and the compositor would split every row of a flooding pane at its edge into new Strips
on every frame (half the cost of a frame)."""

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
        overflow-y: hidden;
        scrollbar-size-vertical: 0;
        background: $surface;
        color: $foreground;
    }
    """

    REFRESH_INTERVAL = 0.05
    """Seconds between repaints while output is arriving."""
    ECHO_CHARS = 4096
    """Output this small (an echo, a prompt) is shown at once, not on the next tick."""
    FLOOD_CHARS = 32 * 1024
    """A view fed more than this since its last repaint is flooding..."""
    FLOOD_INTERVAL = 0.25
    """...and repaints at most this often (4 frames a second): nobody reads a flood, and
    each frame of it costs the UI loop time that keystrokes and other panes need (at 0.15 s
    the benchmark's three floods ran at 1.3-1.5 M lines/s, at 0.25 s at 1.6-1.7)."""
    TYPED_WINDOW = 0.5
    """For this long after a key typed into the view its output is what the user waits
    for: an echo is shown in a frame of its own at once, and a flooding view repaints on
    every tick instead of FLOOD_INTERVAL."""

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
        self._strips: LRUCache[Hashable, Strip] = LRUCache(STRIP_CACHE)
        self._timer: Timer | None = None
        self._follow = True
        self._first_line = self.terminal.first_line
        self._painted = -1
        self._alt = self.terminal.alt_screen
        self._reported: tuple[int, int] | None = None
        self._frame: _Frame | None = None
        self._looks: dict[tuple[tuple[LineFilter, ...], Color], Callable[[Style], Style]] = {}
        self._fast = False
        self._fed = 0
        self._synced = 0.0
        self._soon = False
        self._typed = float("-inf")
        self.sink: Callable[[str], object] | None = None
        """Where input goes directly (the console's per-host send), skipping the
        :class:`Input` message; None posts the message."""

    @property
    def allow_vertical_scroll(self) -> bool:
        """The mouse wheel scrolls the scrollback (there is no Textual scrollbar: see
        :meth:`render_lines`)."""
        return not scroll_disabled(self) and self.max_scroll_y > 0

    @property
    def columns(self) -> int:
        """Columns of terminal text: the view's width less the scroll indicator's."""
        return max(0, self.scrollable_content_region.width - INDICATOR)

    @property
    def pty_size(self) -> tuple[int, int]:
        """``(columns, rows)`` the remote PTY must have: the terminal's text area, without
        the scroll indicator's column (0 while the view has no size)."""
        return self.columns, self.scrollable_content_region.height

    # ---------------------------------------------------------------- output
    def feed(self, data: str) -> None:
        """Append output from the host; the repaint happens on the next timer tick (right
        after the current batch of feeds for a little output after a quiet spell)."""
        terminal = self.terminal
        terminal.feed(data)
        self._fed += len(data)
        if len(data) <= self.ECHO_CHARS and not self._soon and self.is_mounted:
            # an echo, a prompt: show it once this batch of feeds is in, not on the next
            # tick (frames stay capped by the screen's update rate; floods arrive in
            # larger pieces and wait for the tick)
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
        if not self.is_mounted:
            return
        painted = self._painted
        self.sync()
        if self._painted != painted and self.typed_recently:
            present_now(self)  # the echo of a key: on screen now, not in 1-3 loop turns

    @property
    def typed_recently(self) -> bool:
        """A key was typed into the view within :attr:`TYPED_WINDOW` seconds."""
        return time.monotonic() - self._typed < self.TYPED_WINDOW

    def _tick(self) -> None:
        """The repaint timer: :meth:`sync`, less often while the view is flooding (unless
        the user is typing into it)."""
        if (self._fed > self.FLOOD_CHARS and not self.typed_recently
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
        size = Size(self.scrollable_content_region.width, terminal.lines_total)
        if size != self.virtual_size:
            # Set without the reactive's layout refresh: nothing is laid out inside the
            # view (rows and the indicator are drawn by it), and a screen layout costs a
            # flooding console 20-70 ms each time the line count moves.
            self.set_reactive(TerminalView.virtual_size, size)
        if follow:
            self.scroll_to(y=self.max_scroll_y, animate=False, immediate=True, force=True)
        elif dropped:
            self.scroll_to(y=max(0, self.scroll_y - dropped), animate=False, immediate=True,
                           force=True)
        self._follow = follow
        self.refresh()

    @property
    def painted(self) -> bool:
        """True when the view shows the terminal's newest state (tests wait on this
        instead of sleeping through a repaint tick)."""
        return self.terminal.version == self._painted

    @property
    def following(self) -> bool:
        """The view sticks to the newest output (the user has not scrolled back)."""
        return self._follow

    def follow(self) -> None:
        """Jump to the newest output and keep following it."""
        self._follow = True
        self.scroll_to(y=self.max_scroll_y, animate=False, immediate=True, force=True)

    def scroll_to_line(self, index: int) -> None:
        """Scroll so line ``index`` (e.g. a search hit) is in view and stop following."""
        self._follow = False
        target = max(0, index - self.scrollable_content_region.height // 2)
        self.scroll_to(y=min(target, self.max_scroll_y), animate=False, immediate=True, force=True)

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        """Track whether the user left the tail."""
        super().watch_scroll_y(old_value, new_value)
        self._follow = round(new_value) >= self.max_scroll_y

    # -------------------------------------------------------------- rendering
    def render_lines(self, crop: Region) -> list[Strip]:
        """Render a frame, looking up the style and geometry once rather than per row.

        Without border, padding, outline, tint, hatch or opacity (the usual case) each row
        is built as one final Strip (text, padding, scroll indicator, the app's line
        filters) and cached: Textual's per-line styling pass, which would copy every row
        of a flooding terminal several times on every frame, is skipped.
        """
        self._frame = self._frame_info()
        try:
            if self._plain():
                return self._render_plain(crop)
            self._fast = False
            return super().render_lines(crop)
        finally:
            self._frame = None

    def _frame_info(self) -> _Frame:
        """What every row of this frame shares: styles, width, cursor, indicator thumb."""
        region = self.scrollable_content_region
        width, height = region.size
        background = self.background_colors[1]
        styles = self.styles
        total = max(self.terminal.lines_total, height)
        thumb = (0, 0)
        if total > height > 0:
            size = max(1, round(height * height / total))
            top = round(self.scroll_offset.y * (height - size) / (total - height))
            thumb = (top, top + size)
        marks = (Style(bgcolor=(background + styles.scrollbar_background).rich_color),
                 Style(bgcolor=(background + styles.scrollbar_color).rich_color))
        return _Frame(self.rich_style, max(0, width - INDICATOR), thumb, marks,
                      self.terminal.cursor if self.has_focus else None, self.scroll_offset.y)

    def _plain(self) -> bool:
        """True when Textual's styling pass would leave the rows as they are."""
        styles = self.styles
        return (not any(edge for edge, _ in styles.border)
                and not any(edge for edge, _ in styles.outline)
                and not any(styles.padding) and not styles.tint.a
                and styles.text_opacity == 1.0 and self.opacity == 1.0
                and not (styles.has_rule("hatch") and styles.hatch != "none")
                and not has_link(self.hover_style))

    def _render_plain(self, crop: Region) -> list[Strip]:
        """The rows of ``crop`` as Textual's styling pass would give them (see render_lines)."""
        if not self._fast:  # lines the styles cache kept may be stale when it is used again
            self._fast = True
            styles_cache(self).clear()
        base_background, background = self.background_colors
        filters = tuple(self.get_line_filters())
        width, height = self.content_region.size
        strips: list[Strip] = []
        blank: Strip | None = None
        for y in crop.line_range:
            if y < height:
                strips.append(self._row(y, filters, background))
                continue
            if blank is None:
                inner = styles_cache(self).get_inner_outer(base_background, background)[0]
                blank = Strip.blank(width, inner.rich_style)
                for line_filter in filters:
                    blank = blank.apply_filter(line_filter, background)
            strips.append(blank)
        if crop.column_span != (0, width):
            x1, x2 = crop.column_span
            strips = [strip.crop(x1, x2) for strip in strips]
        return strips

    def render_line(self, y: int) -> Strip:
        """One visible row (no line filters; Textual's styling pass applies them)."""
        return self._row(y, (), None)

    def _row(self, y: int, filters: tuple[LineFilter, ...], background: Color | None) -> Strip:
        """Row ``y`` of the view as one Strip: the Terminal line padded or cut to the
        columns, the cursor, the indicator cell, then ``filters``.  Cached by the line's
        key except on the cursor's row."""
        frame = self._frame or self._frame_info()
        index = frame.top + y
        terminal = self.terminal
        columns = frame.columns
        mark = 1 if frame.thumb[0] <= y < frame.thumb[1] else 0
        if columns <= 0:
            return Strip([Segment(" " * INDICATOR, frame.marks[mark])], INDICATOR)
        exists = index < terminal.lines_total
        cursor = frame.cursor is not None and frame.cursor[0] == index and exists
        key = (terminal.line_key(index) if exists else None, columns, frame.base, mark,
               filters, background)
        if not cursor:
            strip = self._strips.get(key)
            if strip is not None:
                return strip
        look = self._look(filters, background)
        base = look(frame.base)
        segments: list[Segment] = []
        used = 0
        if exists:
            add = segments.append
            for text, style in terminal.line(index):
                if text:
                    add(Segment(text, look(frame.base + style) if style is not None else base))
                    used += len(text) if text.isascii() else cell_len(text)
            if used > columns:
                segments = Segment.adjust_line_length(segments, columns, base)
                used = columns
        if used < columns:
            segments.append(Segment(" " * (columns - used), base))
        if cursor and frame.cursor is not None:
            segments = _with_cursor(segments, min(frame.cursor[1], columns - 1), columns)
        segments.append(Segment(" " * INDICATOR, look(frame.marks[mark])))
        strip = LazyStrip(segments, columns + INDICATOR)
        if not cursor:
            self._strips.set(key, strip)
        return strip

    def _look(self, filters: tuple[LineFilter, ...],
              background: Color | None) -> Callable[[Style], Style]:
        """A function giving the final style of a cell of ``style`` once ``filters`` are
        applied (one function per filter set, caching per style: every Textual line filter
        maps each segment's style on its own)."""
        if not filters or background is None:
            return _same
        key = (filters, background)
        cached = self._looks.get(key)
        if cached is not None:
            return cached
        if len(self._looks) > 8:
            self._looks.clear()
        looks: dict[Style, Style] = {}

        def look(style: Style) -> Style:
            final = looks.get(style)
            if final is None:
                segments = [Segment(" ", style)]
                for line_filter in filters:
                    segments = line_filter.apply(segments, background)
                final = looks[style] = segments[0].style or Style()
            return final

        self._looks[key] = look
        return look

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
        if self.take_key(event):
            event.stop()
            event.prevent_default()

    def take_key(self, event: events.Key) -> bool:
        """Handle ``event`` now if it is the view's (see :meth:`on_key`); False when the
        key belongs to the app (reserved) or means nothing to a terminal."""
        if event.key in self.reserved_keys:
            return False
        if event.key in ("shift+pageup", "shift+pagedown"):
            page = max(1, self.scrollable_content_region.height - 1)
            step = -page if event.key == "shift+pageup" else page
            self.scroll_to(y=max(0, min(self.max_scroll_y, round(self.scroll_y) + step)),
                           animate=False, immediate=True)
            return True
        data = encode_key(event.key, event.character,
                          app_cursor=self.terminal.app_cursor_keys)
        if data is None:
            return False
        self._typed = time.monotonic()
        self._send(data)
        return True

    def on_paste(self, event: events.Paste) -> None:
        """Send pasted text, bracketed when the program asked for it."""
        event.stop()
        self.paste(event.text)

    def paste(self, text: str) -> None:
        """Send ``text`` as a terminal pastes it: line ends as Enter (CR), inside bracketed
        paste markers when the program asked for them (bash does: then a heredoc arrives
        whole and runs on Enter)."""
        text = text.replace("\r\n", "\r").replace("\n", "\r")
        if self.terminal.bracketed_paste:
            text = bracketed(text)
        self._typed = time.monotonic()
        self._send(text)

    def send_text(self, data: str) -> None:
        """Send ``data`` to the host as typed (e.g. a literal ctrl+g after the prefix)."""
        self._typed = time.monotonic()
        self._send(data)

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
        size = self.pty_size
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
