"""pyte, corrected where it differs from xterm: an independent reference grid for tests.

The pane's alternate screen was a pyte grid until the ``LineScreen`` took over both
screens; the grid stays as a second implementation the line emulation is checked
against (``tests/unit/test_term_grid.py``).  :class:`Grid` corrects pyte where it
differs from xterm and adds what it lacks (SU/SD, REP, HPA, CHT/CBT, palette colours,
erase with the background colour only); :class:`AltScreen` wraps it.  pyte measures
characters with :func:`char_width`, as the Terminal and Textual do.
"""

from __future__ import annotations

from copy import copy
from functools import lru_cache
from itertools import count
from typing import Any

import pyte
import pyte.screens
from pyte.modes import DECAWM, DECOM
from rich.style import Style

from tui.core.term.cells import char_width
from tui.core.term.sgr import (
    BLINK,
    BOLD,
    DEFAULT_PEN,
    ITALIC,
    REVERSE,
    STRIKE,
    UNDERLINE,
    Colour,
    Pen,
    pen_style,
)

pyte.screens.wcwidth = char_width  # cell widths as Textual measures them

Run = tuple[str, Style | None]

_generations = count(1)

_PYTE_NAMES = {"black": 0, "red": 1, "green": 2, "brown": 3, "yellow": 3, "blue": 4,
               "magenta": 5, "cyan": 6, "white": 7}


def _pyte_colour(name: str) -> Colour:
    """Translate a pyte colour name (``red``, ``brightred``, ``ff0000``) to a colour."""
    if name == "default":
        return None
    if name in _PYTE_NAMES:
        return _PYTE_NAMES[name]
    if name[:1] == "p" and name[1:].isdigit():  # a palette index (pyte_colour_name)
        return int(name[1:])
    if name.startswith(("bright", "bfight")):  # pyte 0.8 spells bright magenta "bfight"
        base = _PYTE_NAMES.get(name[6:])
        return None if base is None else base + 8
    if len(name) == 6:
        try:
            return (int(name[0:2], 16), int(name[2:4], 16), int(name[4:6], 16))
        except ValueError:
            return None
    return None


@lru_cache(maxsize=4096)
def pyte_style(fg: str, bg: str, bold: bool, italics: bool, underscore: bool,
               strikethrough: bool, reverse: bool, blink: bool) -> Style | None:
    """The Rich style of a pyte character's attributes (``None`` when all default)."""
    flags = ((BOLD if bold else 0) | (ITALIC if italics else 0)
             | (UNDERLINE if underscore else 0) | (STRIKE if strikethrough else 0)
             | (REVERSE if reverse else 0) | (BLINK if blink else 0))
    return pen_style((_pyte_colour(fg), _pyte_colour(bg), flags))


def pyte_colour_name(colour: Colour) -> str:
    """How a colour is kept in a pyte cell: ``default``, ``p<index>`` for the palette
    (so it follows the theme), ``rrggbb`` for true colour."""
    if colour is None:
        return "default"
    if isinstance(colour, int):
        return f"p{colour}"
    return "{:02x}{:02x}{:02x}".format(*colour)


def pyte_flags(flags: int) -> dict[str, bool]:
    """pyte's attribute booleans for a pen's flags."""
    return {"bold": bool(flags & BOLD), "italics": bool(flags & ITALIC),
            "underscore": bool(flags & UNDERLINE), "strikethrough": bool(flags & STRIKE),
            "reverse": bool(flags & REVERSE), "blink": bool(flags & BLINK)}


def pyte_pen(char: Any) -> Pen:
    """The pen of a pyte cell's attributes."""
    flags = ((BOLD if char.bold else 0) | (ITALIC if char.italics else 0)
             | (UNDERLINE if char.underscore else 0) | (STRIKE if char.strikethrough else 0)
             | (REVERSE if char.reverse else 0) | (BLINK if char.blink else 0))
    return (_pyte_colour(char.fg), _pyte_colour(char.bg), flags)


def _blank_is_invisible(style: Style | None) -> bool:
    """Would a space in ``style`` look like nothing (no background, no line, no inverse)?"""
    return style is None or not (style.bgcolor or style.reverse or style.underline
                                 or style.strike or style.overline)


class Grid(pyte.Screen):
    """pyte's Screen with insert/delete lines fixed for never-written (sparse) rows.

    pyte 0.8.2 leaves a row's old text in place when the row that should move into
    it was never drawn; vim and less scroll with exactly these sequences.
    """

    last_char = ""
    """The last character drawn (what REP repeats)."""

    def _unwrap(self) -> None:
        """Leave xterm's pending-wrap position (one past the last column) before an edit,
        as xterm does; pyte would otherwise edit nothing."""
        if self.cursor.x >= self.columns:
            self.cursor.x = self.columns - 1

    def _blank_pen(self) -> pyte.screens.Char:
        """Switch the cursor's attributes to blanks in its background colour only (xterm's
        erase colour); returns the attributes to put back."""
        attrs = self.cursor.attrs
        self.cursor.attrs = self.default_char._replace(bg=attrs.bg)
        return attrs

    def erase_in_line(self, how: int = 0, private: bool = False) -> None:
        """CSI K, starting from the last column when a wrap is pending."""
        self._unwrap()
        attrs = self._blank_pen()
        super().erase_in_line(how, private=private)
        self.cursor.attrs = attrs

    def erase_in_display(self, how: int = 0, *args: object, **kwargs: object) -> None:
        """CSI J, blanks in the background colour only; ``CSI 3 J`` clears nothing shown."""
        if how == 3:
            return
        attrs = self._blank_pen()
        super().erase_in_display(how)
        self.cursor.attrs = attrs

    def erase_characters(self, count: int | None = None) -> None:
        """CSI X, starting from the last column when a wrap is pending."""
        self._unwrap()
        attrs = self._blank_pen()
        super().erase_characters(count)
        self.cursor.attrs = attrs

    def insert_characters(self, count: int | None = None) -> None:
        """CSI @, starting from the last column when a wrap is pending.

        pyte keeps the character pushed past the right margin in a hidden cell that a
        later CSI P would pull back into view; it is dropped here, as in xterm.
        """
        self._unwrap()
        attrs = self._blank_pen()
        super().insert_characters(count)
        self.cursor.attrs = attrs
        line = self.buffer[self.cursor.y]
        for x in [x for x in line if x >= self.columns]:
            del line[x]

    def delete_characters(self, count: int | None = None) -> None:
        """CSI P, starting from the last column when a wrap is pending."""
        self._unwrap()
        super().delete_characters(count)

    def backspace(self) -> None:
        """BS from the pending-wrap position lands on the last-but-one column (xterm)."""
        self._unwrap()
        super().backspace()

    def cursor_up(self, count: int | None = None) -> None:
        """CUU stops at the top margin only from inside the region, and ends a pending
        wrap, as in xterm (pyte would pull a cursor above the region into it)."""
        self._unwrap()
        margins, cursor = self.margins, self.cursor
        top = margins.top if margins is not None and cursor.y >= margins.top else 0
        cursor.y = max(top, cursor.y - (count or 1))

    def cursor_down(self, count: int | None = None) -> None:
        """CUD stops at the bottom margin only from inside the region (see cursor_up)."""
        self._unwrap()
        margins, cursor = self.margins, self.cursor
        bottom = (margins.bottom if margins is not None and cursor.y <= margins.bottom
                  else self.lines - 1)
        cursor.y = min(bottom, cursor.y + (count or 1))

    def cursor_to_line(self, line: int | None = None) -> None:
        """VPA ends a pending wrap, as in xterm."""
        self._unwrap()
        super().cursor_to_line(line)

    def index(self) -> None:
        """IND/LF end a pending wrap, as in xterm."""
        self._unwrap()
        super().index()

    def reverse_index(self) -> None:
        """RI ends a pending wrap, as in xterm."""
        self._unwrap()
        super().reverse_index()

    def draw(self, data: str) -> None:
        """Draw text; a wide character that does not fit in the last column wraps first,
        as in xterm (pyte would put half of it past the margin)."""
        if data:
            self.last_char = data[-1]
        if data.isascii():
            super().draw(data)
            return
        start = 0
        for i, char in enumerate(data):
            if char_width(char) == 2:
                if i > start:
                    super().draw(data[start:i])
                if self.cursor.x == self.columns - 1 and DECAWM in self.mode:
                    self.cursor.x = self.columns
                super().draw(char)
                start = i + 1
        if start < len(data):
            super().draw(data[start:])

    def repeat(self, count: int) -> None:
        """REP: draw the last character drawn ``count`` more times."""
        if self.last_char:
            self.draw(self.last_char * min(count, self.columns * self.lines))

    def tab_forward(self, count: int) -> None:
        """CHT: ``count`` tab stops forward (the last column when none is left)."""
        for _ in range(count):
            self.tab()

    def tab_back(self, count: int) -> None:
        """CBT: ``count`` tab stops back (column 0 when none is left)."""
        self._unwrap()
        for _ in range(count):
            stops = [x for x in self.tabstops if x < self.cursor.x]
            self.cursor.x = max(stops) if stops else 0

    def scroll_region(self, count: int, up: bool) -> None:
        """SU (``up``) / SD: move the rows of the scroll region by ``count``, blank rows
        coming in at the other end; the cursor stays."""
        top, bottom = self.margins or (0, self.lines - 1)
        count = min(max(1, count), bottom - top + 1)
        buffer = self.buffer
        rows = range(top, bottom + 1) if up else range(bottom, top - 1, -1)
        step = count if up else -count
        for y in rows:
            source = y + step
            if top <= source <= bottom and source in buffer:
                buffer[y] = buffer[source]
            else:
                buffer.pop(y, None)
        self.dirty.update(range(top, bottom + 1))

    def pen(self) -> Pen:
        """The cursor's attributes as a pen."""
        return pyte_pen(self.cursor.attrs)

    def set_pen(self, pen: Pen) -> None:
        """Draw with ``pen`` from now on (SGR parsed by :func:`apply_sgr`, so palette
        colours 0-255 stay palette indexes and follow the theme)."""
        if pen == DEFAULT_PEN:
            self.cursor.attrs = self.cursor.attrs._replace(
                fg="default", bg="default", bold=False, italics=False, underscore=False,
                strikethrough=False, reverse=False, blink=False)
            return
        fg, bg, flags = pen
        self.cursor.attrs = self.cursor.attrs._replace(
            fg=pyte_colour_name(fg), bg=pyte_colour_name(bg), **pyte_flags(flags))  # type: ignore[arg-type]

    def next_line(self) -> None:
        """NEL (ESC E): carriage return and line feed (pyte only feeds the line)."""
        self.carriage_return()
        self.index()

    def set_margins(self, top: int | None = None, bottom: int | None = None) -> None:
        """DECSTBM; resetting the margins also homes the cursor, as in xterm."""
        super().set_margins(top, bottom)
        if not top and bottom is None:
            self.cursor_position()

    def restore_cursor(self) -> None:
        """DECRC without forgetting the saved cursor (xterm lets it be restored again)."""
        if not self.savepoints:
            super().restore_cursor()
            return
        saved = self.savepoints[-1]
        self.savepoints.append(saved._replace(cursor=copy(saved.cursor)))
        row = saved.cursor.y
        super().restore_cursor()
        if DECOM not in self.mode:  # pyte clamps into the scroll region; xterm does not
            self.cursor.y = min(row, self.lines - 1)

    def insert_lines(self, count: int | None = None) -> None:
        """CSI L: blank rows at the cursor; rows below move down within the margins."""
        count = count or 1
        top, bottom = self.margins or (0, self.lines - 1)
        row = self.cursor.y
        if top <= row <= bottom:
            self.dirty.update(range(row, self.lines))
            buffer = self.buffer
            for y in range(bottom, row - 1, -1):
                source = y - count
                if source >= row and source in buffer:
                    buffer[y] = buffer[source]
                else:
                    buffer.pop(y, None)
            self.carriage_return()

    def delete_lines(self, count: int | None = None) -> None:
        """CSI M: remove rows at the cursor; rows below move up within the margins."""
        count = count or 1
        top, bottom = self.margins or (0, self.lines - 1)
        row = self.cursor.y
        if top <= row <= bottom:
            self.dirty.update(range(row, self.lines))
            buffer = self.buffer
            for y in range(row, bottom + 1):
                source = y + count
                if source <= bottom and source in buffer:
                    buffer[y] = buffer[source]
                else:
                    buffer.pop(y, None)
            self.carriage_return()


class GridStream(pyte.Stream):
    """pyte's Stream with ESC E dispatched to :meth:`Grid.next_line`."""

    escape = {**pyte.Stream.escape, "E": "next_line"}  # noqa: RUF012 - pyte's own table


class AltScreen:
    """A ``columns`` x ``rows`` grid fed with complete escape sequences.

    Args:
        columns: grid width.
        rows: grid height.
        cursor: initial (row, column), the main screen's cursor.
    """

    def __init__(self, columns: int, rows: int, cursor: tuple[int, int] = (0, 0)) -> None:
        self.screen = Grid(max(1, columns), max(1, rows))
        self.stream = GridStream(self.screen)
        self.screen.cursor.y = max(0, min(rows - 1, cursor[0]))
        self.screen.cursor.x = max(0, min(columns - 1, cursor[1]))
        self.generation = next(_generations)
        self._versions = [0] * self.screen.lines

    @property
    def rows(self) -> int:
        """Grid height."""
        return int(self.screen.lines)

    @property
    def columns(self) -> int:
        """Grid width."""
        return int(self.screen.columns)

    def feed(self, pieces: list[str]) -> None:
        """Interpret text pieces and complete escape sequences, in order.

        pyte raises on a few malformed sequences (and resets its parser); such a piece
        is skipped instead of losing the rest of the output or reaching the user.
        """
        feed = self.stream.feed
        for piece in pieces:
            try:
                feed(piece)
            except Exception:
                continue

    def sync(self, stamp: int) -> None:
        """Record ``stamp`` as the version of every row changed since the last sync."""
        screen = self.screen
        for row in screen.dirty:
            if 0 <= row < len(self._versions):
                self._versions[row] = stamp
        screen.dirty.clear()

    def version_of(self, row: int) -> int:
        """Change counter of one row."""
        return self._versions[row] if 0 <= row < len(self._versions) else -1

    def cursor(self) -> tuple[int, int]:
        """Cursor (row, column)."""
        cursor = self.screen.cursor
        return min(cursor.y, self.rows - 1), min(cursor.x, self.columns - 1)

    def line(self, row: int) -> tuple[Run, ...]:
        """One grid row as styled runs; trailing unstyled blanks are dropped."""
        if not 0 <= row < self.rows:
            return ()
        cells = self.screen.buffer[row]
        columns = self.columns
        runs: list[Run] = []
        chars: list[str] = []
        current: Style | None = None
        wide = False  # the previous cell held the left half of a wide character
        for x in range(columns):
            char = cells[x]
            data = char.data
            if not data.isascii() or not data:
                # Keep every cell one cell wide: a stub without its wide character, or a
                # wide character whose right half was overwritten, shows as a blank.
                if data == "":
                    if wide:
                        wide = False
                        continue
                    data = " "
                elif char_width(data[0]) == 2:
                    wide = x + 1 < columns and cells[x + 1].data == ""
                    if not wide:
                        data = " "
            style = pyte_style(char.fg, char.bg, char.bold, char.italics, char.underscore,
                               char.strikethrough, char.reverse, char.blink)
            if style is not current and style != current:
                if chars:
                    runs.append(("".join(chars), current))
                chars = []
                current = style
            chars.append(data)
        if chars:
            runs.append(("".join(chars), current))
        while runs and _blank_is_invisible(runs[-1][1]):
            text, style = runs[-1]
            stripped = text.rstrip(" ")
            if stripped:
                runs[-1] = (stripped, style)
                break
            runs.pop()
        return tuple(runs)

    def resize(self, columns: int, rows: int) -> None:
        """Resize the grid (pyte keeps the top-left content)."""
        self.screen.resize(lines=max(1, rows), columns=max(1, columns))
        self.screen.dirty.update(range(self.screen.lines))
        self._versions = [0] * self.screen.lines
