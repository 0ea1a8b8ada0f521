"""Line-mode emulation of a terminal screen: drawing, editing, movement.

:class:`LineScreen` adds what a shell and full-screen programs send (carriage
returns, backspaces, tabs and tab stops, erase in the background colour, cursor
movement, origin mode, insert mode, insert/delete, scroll regions, save/restore,
REP, DECALN) to the storage and fast paths of :class:`LineBuffer`.  The main screen
is one with scrollback, the alternate screen one without.  Semantics follow xterm,
including the pending wrap at the right margin that readline relies on.
"""

from __future__ import annotations

from collections import deque

from rich.style import Style

from tui.core.term.buffer import LineBuffer
from tui.core.term.cells import Line, char_width, repair_wide
from tui.core.term.sgr import DEFAULT_PEN, Pen, pen_style

TAB_WIDTH = 8


class LineScreen(LineBuffer):
    """Line-mode emulation of a terminal's main screen with bounded scrollback.

    Args:
        columns: screen width in cells.
        rows: screen height in rows.
        scrollback: lines kept above the screen.
    """

    # ---------------------------------------------------------------- writing
    def write(self, text: str) -> None:
        """Draw printable ``text`` (no control characters) at the cursor."""
        if self.charset is not None:
            text = text.translate(self.charset)
        columns = self.columns
        style = self.style
        while text:
            if self.cx >= columns and (text.isascii() or char_width(text[0]) > 0):
                # (a combining character joins the last cell: no wrap for it)
                if self.autowrap:
                    self.cx = 0
                    self.index()
                else:
                    self.cx = columns - 1
            chars, styles = self._load_hot()
            self._hot_dirty = True
            cx = self.cx
            if len(chars) < cx:
                pad = cx - len(chars)
                chars.extend(" " * pad)
                styles.extend([None] * pad)
            if not text.isascii():
                text = self._write_wide(text, chars, styles)
                continue
            piece, text = text[:columns - cx], text[columns - cx:]
            end = cx + len(piece)
            if self.insert_mode and cx < len(chars):
                chars[cx:cx] = piece
                styles[cx:cx] = [style] * len(piece)
                del chars[columns:]
                del styles[columns:]
                if "" in chars:
                    repair_wide(chars)
            if cx < len(chars) and chars[cx] == "" and cx > 0:
                chars[cx - 1] = " "
            chars[cx:end] = piece
            styles[cx:end] = [style] * len(piece)
            if end < len(chars) and chars[end] == "":
                chars[end] = " "
            self.cx = end

    def _write_wide(self, text: str, chars: list[str], styles: list[Style | None]) -> str:
        """Draw characters one at a time until the line is full; return the rest."""
        columns = self.columns
        style = self.style
        for i, ch in enumerate(text):
            width = char_width(ch)
            cx = self.cx
            if width <= 0:
                if width == 0 and cx > 0 and cx <= len(chars):
                    at = cx - 2 if chars[cx - 1] == "" and cx > 1 else cx - 1
                    chars[at] += ch
                continue
            if cx + width > columns:
                if width > columns:
                    continue
                if self.autowrap:
                    self.cx = columns  # wrap before drawing, as xterm does
                    return text[i:]
                cx = self.cx = columns - width
            if self.insert_mode and cx < len(chars):
                chars[cx:cx] = " " * width
                styles[cx:cx] = [None] * width
                del chars[columns:]
                del styles[columns:]
                if "" in chars:
                    repair_wide(chars)  # a wide character split by the insertion
            while len(chars) < cx + width:
                chars.append(" ")
                styles.append(None)
            if chars[cx] == "" and cx > 0:
                chars[cx - 1] = " "
            if cx + width < len(chars) and chars[cx + width] == "":
                chars[cx + width] = " "
            chars[cx] = ch
            styles[cx] = style
            if width == 2:
                chars[cx + 1] = ""
                styles[cx + 1] = style
            self.cx = cx + width
        return ""

    # ---------------------------------------------------------- line control
    def carriage_return(self) -> None:
        """Move to column 0."""
        self.cx = 0

    def backspace(self) -> None:
        """Move one column left (from the pending-wrap position, to the last-but-one)."""
        if self.cx >= self.columns:
            self.cx = self.columns - 1
        self.cx = max(0, self.cx - 1)

    def tab(self, count: int = 1) -> None:
        """HT / CHT: move to the next tab stop (every 8 columns unless set with HTS/TBC),
        the last column when there is none."""
        last = self.columns - 1
        for _ in range(max(1, count)):
            cx = min(self.cx, last)
            if self.tab_stops is None:
                self.cx = min(last, (cx // TAB_WIDTH + 1) * TAB_WIDTH)
            else:
                self.cx = next((x for x in self.tab_stops if x > cx and x < last), last)

    def back_tab(self, count: int = 1) -> None:
        """CBT: move back ``count`` tab stops (column 0 when there is none)."""
        for _ in range(max(1, count)):
            cx = min(self.cx, self.columns - 1)
            if self.tab_stops is None:
                self.cx = max(0, (cx - 1) // TAB_WIDTH * TAB_WIDTH)
            else:
                self.cx = max((x for x in self.tab_stops if x < cx), default=0)

    def set_tab_stop(self) -> None:
        """HTS: a tab stop at the cursor's column."""
        stops = self._stops()
        cx = min(self.cx, self.columns - 1)
        if cx not in stops:
            stops.append(cx)
            stops.sort()

    def clear_tab_stops(self, how: int = 0) -> None:
        """TBC: ``0`` clears the stop at the cursor, ``3`` every stop."""
        if how == 3:
            self.tab_stops = []
        elif how == 0:
            cx = min(self.cx, self.columns - 1)
            self.tab_stops = [x for x in self._stops() if x != cx]

    def _stops(self) -> list[int]:
        if self.tab_stops is None:
            self.tab_stops = list(range(TAB_WIDTH, self.columns, TAB_WIDTH))
        return self.tab_stops

    def repeat(self, count: int) -> None:
        """REP: draw the character left of the cursor ``count`` more times."""
        chars, _ = self._load_hot()
        at = min(self.cx, self.columns) - 1
        if at > 0 and at < len(chars) and chars[at] == "":
            at -= 1
        if 0 <= at < len(chars) and chars[at] not in ("", " "):
            char = chars[at]
            if not char.isascii() and char_width(char[0]) == 0:
                return
            self.write(char * min(count, self.columns * self.rows))

    def linefeed(self) -> None:
        """LF / VT / FF without line mode: down one row, same column."""
        self.index()

    def newline(self) -> None:
        """Line feed with carriage return (line mode treats LF as CR LF)."""
        self.cx = 0
        self.index()

    def index(self) -> None:
        """Move down one row, scrolling at the bottom margin; ends a pending wrap."""
        self.cx = min(self.cx, self.columns - 1)
        if self.cy == self.margin_bottom:
            self.scroll_up(1)
        elif self.cy < self.rows - 1:
            self.cy += 1

    def reverse_index(self) -> None:
        """Move up one row, scrolling down at the top margin; ends a pending wrap."""
        self.cx = min(self.cx, self.columns - 1)
        if self.cy == self.margin_top:
            self.scroll_down(1)
        elif self.cy > 0:
            self.cy -= 1

    def set_pen(self, pen: Pen) -> None:
        """Set the drawing attributes."""
        self.pen = pen
        self.style = pen_style(pen)

    # --------------------------------------------------------- screen editing
    def _screen(self) -> list[Line]:
        """The screen rows as a list (blank rows included), hot line stored first."""
        self._drop_hot()
        rows: list[Line] = []
        for absolute in range(self.top, self.top + self.rows):
            rows.append(self.lines[absolute - self.dropped]
                        if self.dropped <= absolute < self.end else "")
        return rows

    def _set_screen(self, rows: list[Line]) -> None:
        """Write edited screen rows back, keeping trailing blank rows virtual."""
        self._tail = None
        last = len(rows) - 1
        while last >= 0 and rows[last] == "" and self.top + last >= self.end:
            last -= 1
        for i in range(last + 1):
            absolute = self.top + i
            if absolute < self.end:
                index = absolute - self.dropped
                if self.lines[index] is not rows[i]:
                    self.lines[index] = rows[i]
                    self._touch(absolute)
            else:
                self._extend_to(absolute - 1)  # rows above it that were never stored
                self._append(rows[i])
        keep = self.top + self.cy
        while self.end - 1 > keep and self.lines[-1] == "":
            self.lines.pop()

    def _full_region(self) -> bool:
        return self.margin_top == 0 and self.margin_bottom == self.rows - 1

    def scroll_up(self, count: int = 1) -> None:
        """Scroll the region up; rows leaving the top of the screen join the scrollback."""
        count = max(1, count)
        if self._full_region():
            self.top += count
            if self.pen[1] is not None:  # the new rows take the background colour
                rows = self._screen()
                self._set_screen([*rows[:-count], *[self._blank_row()] * min(count, self.rows)])
            return
        top, bottom = self.margin_top, self.margin_bottom
        count = min(count, bottom - top + 1)
        rows = self._screen()
        region = [*rows[top + count:bottom + 1], *[self._blank_row()] * count]
        if top == 0:
            # Like xterm: rows scrolled off a region that starts at the top are kept.
            self._extend_to(self.top + count - 1)
            self.top += count
            self._set_screen([*region, *rows[bottom + 1:]])
        else:
            self._set_screen([*rows[:top], *region, *rows[bottom + 1:]])

    def scroll_down(self, count: int = 1) -> None:
        """Scroll the region down, inserting blank rows at its top."""
        top, bottom = self.margin_top, self.margin_bottom
        count = min(max(1, count), bottom - top + 1)
        rows = self._screen()
        region = [*[self._blank_row()] * count, *rows[top:bottom + 1 - count]]
        self._set_screen([*rows[:top], *region, *rows[bottom + 1:]])

    def insert_lines(self, count: int = 1) -> None:
        """Insert blank rows at the cursor, pushing rows below down within the region."""
        if not self.margin_top <= self.cy <= self.margin_bottom:
            return
        saved_top = self.margin_top
        self.margin_top = self.cy
        self.scroll_down(count)
        self.margin_top = saved_top
        self.cx = 0

    def delete_lines(self, count: int = 1) -> None:
        """Delete rows at the cursor, pulling rows below up within the region."""
        if not self.margin_top <= self.cy <= self.margin_bottom:
            return
        top, bottom = self.cy, self.margin_bottom
        count = min(max(1, count), bottom - top + 1)
        rows = self._screen()
        region = [*rows[top + count:bottom + 1], *[self._blank_row()] * count]
        self._set_screen([*rows[:top], *region, *rows[bottom + 1:]])
        self.cx = 0

    def erase_in_line(self, how: int = 0) -> None:
        """CSI K: 0 = cursor to end, 1 = start to cursor, 2 = whole line."""
        chars, styles = self._load_hot()
        self._hot_dirty = True
        cx = self.cx = min(self.cx, self.columns - 1)  # edits end a pending wrap
        fill = self._fill()
        if how == 0:
            wide = "" in chars
            del chars[cx:]
            del styles[cx:]
            if wide:
                repair_wide(chars)
            if fill is not None:
                chars.extend(" " * (self.columns - cx))
                styles.extend([fill] * (self.columns - cx))
        elif how == 1:
            upto = min(cx + 1, self.columns)
            chars[:upto] = " " * upto
            styles[:upto] = [fill] * upto
            if upto < len(chars) and chars[upto] == "":
                chars[upto] = " "
        elif how == 2:
            chars.clear()
            styles.clear()
            if fill is not None:
                chars.extend(" " * self.columns)
                styles.extend([fill] * self.columns)

    def _fill(self) -> Style | None:
        """The style of erased cells: the pen's background colour only (xterm's BCE)."""
        bg = self.pen[1]
        return None if bg is None else pen_style((None, bg, 0))

    def _blank_row(self) -> Line:
        fill = self._fill()
        return "" if fill is None else ((" " * self.columns, fill),)

    def erase_in_display(self, how: int = 0) -> None:
        """CSI J: 0 = below, 1 = above, 2 = whole screen (kept in scrollback), 3 = the
        scrollback."""
        blank = self._blank_row()
        if how == 0:
            self.erase_in_line(0)
            rows = self._screen()
            self._set_screen([*rows[:self.cy + 1], *[blank] * (self.rows - self.cy - 1)])
        elif how == 1:
            self.erase_in_line(1)
            rows = self._screen()
            self._set_screen([*[blank] * self.cy, *rows[self.cy:]])
        elif how == 2:
            rows = self._screen()
            used = max((i + 1 for i, row in enumerate(rows) if row), default=0)
            # Like tmux: the cleared screen's rows, up to the last one used, move into
            # the scrollback.
            self._extend_to(self.top + used - 1)
            self.top += used
            if blank:
                self._set_screen([blank] * self.rows)
        elif how == 3:
            self.clear_scrollback()

    def clear_scrollback(self) -> None:
        """CSI 3 J: forget every line above the screen."""
        self._drop_hot()
        self._tail = None
        above = self.top - self.dropped
        for _ in range(min(above, len(self.lines))):
            self.lines.popleft()
        self.dropped += above  # lines[0], if any is left, is the screen's first row

    def insert_characters(self, count: int = 1) -> None:
        """CSI @: insert blanks at the cursor, shifting the rest right."""
        chars, styles = self._load_hot()
        self._hot_dirty = True
        cx = self.cx = min(self.cx, self.columns - 1)  # edits end a pending wrap
        fill = self._fill()
        if cx >= len(chars):
            if fill is None:
                return
            styles.extend([None] * (cx - len(chars)))
            chars.extend(" " * (cx - len(chars)))
        wide = "" in chars
        chars[cx:cx] = " " * count
        styles[cx:cx] = [fill] * count
        del chars[self.columns:]
        del styles[self.columns:]
        if wide:
            repair_wide(chars)

    def delete_characters(self, count: int = 1) -> None:
        """CSI P: delete characters at the cursor, shifting the rest left."""
        chars, styles = self._load_hot()
        self._hot_dirty = True
        cx = self.cx = min(self.cx, self.columns - 1)  # edits end a pending wrap
        wide = "" in chars
        del chars[cx:cx + count]
        del styles[cx:cx + count]
        fill = self._fill()
        if fill is not None and cx < self.columns:  # vacated cells take the background
            room = self.columns - len(chars)
            styles.extend([fill] * room)
            chars.extend(" " * room)
        if wide:
            repair_wide(chars)

    def erase_characters(self, count: int = 1) -> None:
        """CSI X: blank characters from the cursor on, without shifting."""
        chars, styles = self._load_hot()
        self._hot_dirty = True
        cx = self.cx = min(self.cx, self.columns - 1)  # edits end a pending wrap
        fill = self._fill()
        end = min(cx + count, len(chars) if fill is None else self.columns)
        if end > cx:
            wide = "" in chars
            if len(chars) < end:
                styles.extend([None] * (end - len(chars)))
                chars.extend(" " * (end - len(chars)))
            chars[cx:end] = " " * (end - cx)
            styles[cx:end] = [fill] * (end - cx)
            if wide:
                repair_wide(chars)

    # -------------------------------------------------------- cursor movement
    def move_to(self, row: int | None = None, column: int | None = None) -> None:
        """Absolute cursor position on the screen (0-based), clamped; ends a pending wrap."""
        self.cx = min(self.cx, self.columns - 1)
        if row is not None and self.origin:
            self.cy = max(self.margin_top, min(self.margin_bottom, self.margin_top + row))
        elif row is not None:
            self.cy = max(0, min(self.rows - 1, row))
        if column is not None:
            self.cx = max(0, min(self.columns - 1, column))

    def move_by(self, rows: int = 0, columns: int = 0) -> None:
        """Relative cursor movement; vertical moves stop at the scroll margins.

        Like xterm, any movement ends a pending wrap (the cursor stays on the last column).
        """
        self.cx = min(self.cx, self.columns - 1)
        if rows < 0:
            floor = self.margin_top if self.cy >= self.margin_top else 0
            self.cy = max(floor, self.cy + rows)
        elif rows > 0:
            ceiling = self.margin_bottom if self.cy <= self.margin_bottom else self.rows - 1
            self.cy = min(ceiling, self.cy + rows)
        if columns:
            self.cx = max(0, min(self.columns - 1, min(self.cx, self.columns - 1) + columns))

    def set_margins(self, top: int, bottom: int) -> None:
        """DECSTBM with 1-based rows (0 = default); homes the cursor."""
        first = max(1, top) - 1
        last = (bottom or self.rows) - 1
        last = min(last, self.rows - 1)
        if first < last:
            self.margin_top, self.margin_bottom = first, last
            self.move_to(0, 0)

    def align(self) -> None:
        """DECALN: fill the screen with ``E``, reset the margins, cursor home."""
        self.margin_top, self.margin_bottom = 0, self.rows - 1
        self.origin = False
        self._screen()
        self._set_screen(["E" * self.columns] * self.rows)
        self.cy = self.cx = 0

    def save_cursor(self) -> None:
        """DECSC: remember position and pen."""
        self.saved = (self.cy, self.cx, self.pen)

    def restore_cursor(self) -> None:
        """DECRC: return to the saved position and pen (home if nothing was saved)."""
        cy, cx, pen = self.saved if self.saved is not None else (0, 0, DEFAULT_PEN)
        self.cy, self.cx = min(cy, self.rows - 1), min(cx, self.columns - 1)
        self.set_pen(pen)

    # ----------------------------------------------------------------- sizing
    def resize(self, columns: int, rows: int) -> None:
        """Change the screen size; stored lines are not reflowed (like xterm)."""
        self._drop_hot()
        self._tail = None
        columns, rows = max(1, columns), max(1, rows)
        cursor = self.top + self.cy
        if rows != self.rows:
            if rows < self.rows:
                self.top = max(self.top, self.end - rows, cursor - rows + 1)
            elif self.end >= self.top + self.rows:
                # The screen was full: growing reveals scrollback above, as in VTE/tmux.
                self.top = max(self.dropped, self.end - rows)
            self.cy = max(0, min(rows - 1, cursor - self.top))
            before = len(self.lines)
            self.lines = deque(self.lines, maxlen=self.scrollback + rows)
            self.dropped += before - len(self.lines)
            self.top = max(self.top, self.dropped)
            self.rows = rows
        self.columns = columns
        self.cx = min(self.cx, columns)
        self.margin_top, self.margin_bottom = 0, self.rows - 1
        self._floor, self._floor_abs = self.stamp, self.end
        self._versions.clear()

    def reset(self) -> None:
        """RIS: clear the screen into the scrollback and reset modes."""
        self.erase_in_display(2)
        self.cy = self.cx = 0
        self.set_pen(DEFAULT_PEN)
        self.autowrap = True
        self.insert_mode = self.origin = False
        self.tab_stops = None
        self.charset = None
        self.margin_top, self.margin_bottom = 0, self.rows - 1
