"""The main screen's storage: a capped deque of lines, a cursor, and fast appends.

The screen is the bottom ``rows`` rows starting at the absolute line ``top``;
everything above it is scrollback.  Plain output (the common case: command output
with no escape sequences) is appended with ``str.split`` and ``deque.extend``, and
text with only SGR colour changes is built line by line without per-cell work.
Anything that edits a line in place (``\\r``, ``\\b``, erase, cursor movement) goes
through a per-cell copy of the cursor's line, the "hot" line, which is written back
once per feed.

Positions: *absolute* line numbers count every line ever stored (evicted ones
included), so they stay stable while old lines drop off the top; ``dropped`` is how
many were evicted.  Views use ``(absolute number, version)`` as a cache key.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Sequence

from rich.style import Style

from tui.core.term.cells import (
    SGR_SPLIT,
    Line,
    Run,
    cell_width,
    char_width,
    compact,
    concat,
    decode,
    line_cells,
    runs_of,
    wrap_text,
)
from tui.core.term.sgr import DEFAULT_PEN, Pen, apply_sgr, pen_style

_SGR_AT = re.compile("\x1b\\[[0-9;:]*m")
_PRINTABLE = bytes(range(0x20, 0x7F))
_SOME_PEN: Pen = (1, 2, 3)
"""A pen with everything set: an SGR that turns it into the default pen resets."""
KNOWN_SGR_MAX = 64
"""Distinct SGR sequences a buffer remembers for :meth:`LineBuffer.append_coded`."""


class LineBuffer:
    """Stored lines, the cursor and the fast append paths of the main screen.

    Args:
        columns: screen width in cells.
        rows: screen height in rows.
        scrollback: lines kept above the screen.
    """

    def __init__(self, columns: int, rows: int, scrollback: int) -> None:
        self.columns = max(1, columns)
        self.rows = max(1, rows)
        self.scrollback = max(0, scrollback)
        self.lines: deque[Line] = deque(maxlen=self.scrollback + self.rows)
        self.dropped = 0
        self.top = 0
        self.cy = 0
        self.cx = 0
        self.pen: Pen = DEFAULT_PEN
        self.style: Style | None = None
        self.autowrap = True
        self.insert_mode = False
        self.origin = False
        self.tab_stops: list[int] | None = None  # None: every 8 columns
        self.margin_top = 0
        self.margin_bottom = self.rows - 1
        self.charset: dict[int, str] | None = None
        self.saved: tuple[int, int, Pen] | None = None
        self.stamp = 0
        self._versions: dict[int, int] = {}
        self._floor_abs = 0
        self._floor = 0
        self._high = 0
        self._hot_row = -1
        self._hot_chars: list[str] = []
        self._hot_styles: list[Style | None] = []
        self._hot_dirty = False
        self._tail: tuple[int, int] | None = None  # (absolute last line, its cells)
        self._known_sgr: dict[str, bool] = {}  # SGR sequences seen: does it reset the pen?

    # ----------------------------------------------------------------- reading
    @property
    def end(self) -> int:
        """Absolute number one past the last stored line."""
        return self.dropped + len(self.lines)

    @property
    def lines_total(self) -> int:
        """Lines a view shows: stored scrollback plus the whole screen."""
        return max(len(self.lines), self.top + self.rows - self.dropped)

    def line(self, index: int) -> Line:
        """The line at view index ``index`` (0 = oldest kept line)."""
        if 0 <= index < len(self.lines):
            return self.lines[index]
        return ""

    def version_of(self, absolute: int) -> int:
        """Change counter of one absolute line (-1 while it is a blank screen row)."""
        if absolute >= self.end:
            return -1
        version = self._versions.get(absolute)
        if version is None:
            return self._floor if absolute < self._floor_abs else 0
        return version

    def cursor(self) -> tuple[int, int]:
        """Cursor as (view index, column), the column clamped to the screen."""
        return self.top + self.cy - self.dropped, min(self.cx, self.columns - 1)

    # ------------------------------------------------------------- bookkeeping
    def _touch(self, absolute: int) -> None:
        self._versions[absolute] = self.stamp

    def sync(self) -> None:
        """Write the hot line back, keep at most ``scrollback`` lines above the screen
        (a clear or a scroll moves the screen down before new lines push old ones out)
        and bound the version table (end of a feed)."""
        self._store_hot()
        excess = self.top - self.dropped - self.scrollback
        if excess > 0:
            lines = self.lines
            for _ in range(min(excess, len(lines))):
                lines.popleft()
            self.dropped += excess  # lines[0] is line ``dropped``, if any is left
        if len(self._versions) > 8 * self.rows + 256:
            self._floor, self._floor_abs = self.stamp, self.top
            self._versions = {a: v for a, v in self._versions.items() if a >= self.top}

    def _append(self, line: Line) -> None:
        if len(self.lines) == self.lines.maxlen:
            self.dropped += 1
        self.lines.append(line)
        absolute = self.end - 1
        if absolute < self._high:
            self._touch(absolute)
        else:
            self._high = absolute + 1

    def _extend_to(self, absolute: int) -> None:
        """Make sure line ``absolute`` is stored (blank lines fill the gap)."""
        while self.end <= absolute:
            self._append("")

    def _store_hot(self) -> None:
        if not self._hot_dirty:
            return
        self._hot_dirty = False
        self._tail = None
        row = self._hot_row
        self._extend_to(row)
        if row >= self.dropped:
            self.lines[row - self.dropped] = compact(self._hot_chars, self._hot_styles)
            self._touch(row)

    def _drop_hot(self) -> None:
        """Store and forget the hot line (before lines move around)."""
        self._store_hot()
        self._hot_row = -1

    def _load_hot(self) -> tuple[list[str], list[Style | None]]:
        row = self.top + self.cy
        if row == self._hot_row:
            return self._hot_chars, self._hot_styles
        self._store_hot()
        self._hot_row = row
        chars: list[str] = []
        styles: list[Style | None] = []
        if self.dropped <= row < self.end:
            line = self.lines[row - self.dropped]
            runs = runs_of(line)
            for text, style in runs:
                if text.isascii():
                    chars.extend(text)
                    styles.extend([style] * len(text))
                    continue
                for ch in text:
                    width = char_width(ch)
                    if width <= 0 and chars:
                        chars[-1] += ch
                        continue
                    chars.append(ch)
                    styles.append(style)
                    if width == 2:
                        chars.append("")
                        styles.append(style)
        self._hot_chars, self._hot_styles = chars, styles
        return chars, styles

    # --------------------------------------------------------------- fast path
    def scrolls_plainly(self) -> bool:
        """True when printed lines scroll the whole screen (no scroll region, no
        alternate character set): what :meth:`scroll_out` assumes."""
        return (self.charset is None and self.margin_top == 0
                and self.margin_bottom == self.rows - 1)

    def scroll_out(self, count: int) -> None:
        """``count`` lines of plain text were printed, and more lines follow than the
        buffer holds: forget every stored line and continue at column 0 of a new line
        ``count`` lines further on, as printing them would (nothing of them survives the
        lines that follow), without splitting or storing them."""
        self._drop_hot()
        start = self.end + count
        self.lines.clear()
        self.lines.append("")
        self.dropped = self.top = self._high = start
        self._high += 1
        self.cy = self.cx = 0
        self._tail = (start, 0)

    def plain_ready(self, first: str) -> bool:
        """Can text starting with ``first`` be appended at the end of the buffer without
        per-cell work?  True when the cursor sits at the end of the last line (or the
        text starts a new line from it)."""
        if (self.charset is not None or not self.autowrap or self.insert_mode
                or self.margin_top != 0 or self.margin_bottom != self.rows - 1
                or self.pen[1] is not None):  # scrolled-in rows take the background
            return False
        row = self.top + self.cy
        end = self.dropped + len(self.lines)
        if self._hot_dirty and self._hot_row >= end:
            end = self._hot_row + 1  # an edited row below the stored ones
        if row < end - 1:
            return False
        if first == "\n":
            return True
        if row == self._hot_row:
            return self.cx == len(self._hot_chars)
        if row >= end:
            return self.cx == 0
        tail = self._tail
        if tail is not None and tail[0] == row:
            return self.cx == tail[1]
        return self.cx == line_cells(self.lines[-1])

    def _prepare_append(self) -> None:
        if self._hot_row >= 0:
            self._drop_hot()
        row = self.top + self.cy
        if row >= self.dropped + len(self.lines):
            self._extend_to(row)

    def append_plain(self, data: str) -> None:
        """Append text containing no control characters other than ``\\n`` in the
        current style.

        Call only when :meth:`plain_ready` says so.  Lines wider than the screen are
        wrapped into several stored lines, as the terminal's autowrap would.
        """
        self._prepare_append()
        keep = self.lines.maxlen or 0
        if len(data) > keep and data.count("\n") > keep:
            # More lines than the whole buffer holds: those before the last ``keep`` would
            # be stored only to be pushed out again by this same append.  Count them as
            # scrolled out without splitting or storing them (a flood then costs what the
            # scrollback keeps); the current line goes out with them.
            parts = data.rsplit("\n", keep)
            self.dropped += parts[0].count("\n")
            parts[0] = ""
        else:
            parts = data.split("\n")
        columns = self.columns
        cx = self.cx if parts[0] else 0
        ascii_only = data.isascii()
        if len(data) > columns - cx or not ascii_only:
            longest = max(map(len, parts))
            if longest > columns - cx if ascii_only else longest * 2 > columns - cx:
                parts = self._wrapped(parts, cx)
        tail = parts[-1]
        cells = (cx + cell_width(tail)) if len(parts) == 1 else cell_width(tail)
        style = self.style
        if style is None:
            self._commit(parts[0], parts[1:], cells)
        else:
            first: Line = ((parts[0], style),) if parts[0] else ""
            self._commit(first, [((part, style),) if part else "" for part in parts[1:]],
                         cells)

    def append_styled(self, tokens: list[str]) -> bool:
        """Append text interleaved with SGR parameters (``re.split`` output: even
        items are text without control characters other than ``\\n``, odd items are
        SGR parameter strings).

        Call only when :meth:`plain_ready` says so.  Returns False, changing nothing,
        when a line would need wrapping (the caller then takes the general path).
        """
        columns = self.columns
        pen, style = self.pen, self.style
        cells = 0 if tokens[0][:1] == "\n" else self.cx
        built: list[Line] = []
        runs: list[Run] = []
        styled = False  # some run of the line being built has a style
        for i, token in enumerate(tokens):
            if i & 1:
                pen = apply_sgr(pen, token)
                style = pen_style(pen)
                continue
            if not token:
                continue
            ascii_only = token.isascii()
            pieces = token.split("\n")
            last = len(pieces) - 1
            for j in (0, last) if last else (0,):
                if j:
                    if pen[1] is not None:
                        return False  # a new row in a background colour: general path
                    built.append(tuple(runs) if styled else "".join(t for t, _ in runs))
                    runs = []
                    styled = False
                    cells = 0
                    middle = pieces[1:last]
                    if middle:  # whole lines in one style: no per-line work
                        if (max(map(len, middle)) > columns if ascii_only
                                else max(map(cell_width, middle)) > columns):
                            return False
                        built.extend(middle if style is None
                                     else [((p, style),) if p else "" for p in middle])
                piece = pieces[j]
                if piece:
                    cells += len(piece) if ascii_only else cell_width(piece)
                    if cells > columns:
                        return False
                    if runs and (runs[-1][1] is style or runs[-1][1] == style):
                        runs[-1] = (runs[-1][0] + piece, style)
                    else:
                        runs.append((piece, style))
                        styled = styled or style is not None
        built.append(tuple(runs) if styled else "".join(t for t, _ in runs))
        self._prepare_append()
        self.pen, self.style = pen, style
        self._commit(built[0], built[1:], cells)
        return True

    def append_coded(self, data: str) -> bool:
        """Append complete lines of ASCII text and SGR sequences (``data`` ends with
        ``\\n``) storing each line as it came, when every line leaves the pen at its
        default: the coloured flood of logs, ``ls --color`` or ``journalctl``.

        Only C-level string operations run per line: the SGR sequences are removed with
        ``str.replace`` (one pass per distinct sequence) to check the text is printable
        and fits the screen, and each line's last sequence must be a reset.  A view
        decodes a line into runs only when it shows it.  Call only when
        :meth:`plain_ready` says so; returns False, changing nothing, when the data is
        not of that form (the caller then takes the general path).
        """
        if not data.isascii() or "\x02" in data:
            return False
        # Every ESC must start an SGR sequence already seen (or found now): count them.
        known = self._known_sgr
        escapes = data.count("\x1b")
        counts = {sgr: data.count(sgr) for sgr in known}
        if sum(counts.values()) != escapes:
            if len(known) >= KNOWN_SGR_MAX:
                known.clear()
            for sgr in _SGR_AT.findall(data):
                if sgr not in known:
                    known[sgr] = apply_sgr(_SOME_PEN, sgr[2:-1]) == DEFAULT_PEN
            counts = {sgr: data.count(sgr) for sgr in known}
            if sum(counts.values()) != escapes:
                return False  # an escape sequence other than SGR
        marked = data  # resets become \x02: each line must end with the pen reset
        for sgr, number in counts.items():
            if number and known[sgr]:
                marked = marked.replace(sgr, "\x02")
        # What is left once printable characters go: only ESC (the start of an SGR that
        # does not reset), \x02 and LF, and never ESC right before LF (a line ending with
        # the pen changed, which would colour the next one).
        rest = marked.encode("ascii").translate(None, _PRINTABLE)
        if rest.translate(None, b"\x1b\x02\n") or b"\x1b\n" in rest:
            return False
        first_end = marked.find("\n")
        if self.pen != DEFAULT_PEN and marked.find("\x02", 0, first_end) < 0:
            return False
        raw = data.split("\n")
        count = len(raw) - 1
        columns = self.columns
        if max(map(len, raw)) > columns or self.cx + len(raw[0]) > columns:
            shown = SGR_SPLIT.sub("", data).split("\n")
            if max(map(len, shown)) > columns or self.cx + len(shown[0]) > columns:
                return False
        first, _ = decode(raw[0], self.pen)
        self._prepare_append()
        self.pen, self.style = DEFAULT_PEN, None
        raw[count] = ""
        self._commit(first, raw[1:], 0)
        return True

    def _commit(self, first: Line, rest: Sequence[Line], cells: int) -> None:
        """Append ``first`` to the last line and ``rest`` as new lines; the cursor ends
        ``cells`` into the last of them."""
        lines = self.lines
        if first:
            lines[-1] = concat(lines[-1], first)
            self._touch(self.dropped + len(lines) - 1)
        count = len(rest)
        if count:
            start = self.dropped + len(lines)
            overflow = len(lines) + count - (lines.maxlen or 0)
            if overflow > 0:
                self.dropped += overflow
            if count == 1:
                lines.append(rest[0])
            else:
                lines.extend(rest)
            end = self.dropped + len(lines)
            if start < self._high:
                for absolute in range(start, min(self._high, end)):
                    self._touch(absolute)
            if end > self._high:
                self._high = end
        end = self.dropped + len(lines)
        if end - self.rows > self.top:
            self.top = end - self.rows
        self.cy = end - 1 - self.top
        self.cx = cells
        self._tail = (end - 1, cells)

    def _wrapped(self, parts: list[str], cx: int) -> list[str]:
        """Re-split ``parts`` so no line is wider than the screen."""
        columns = self.columns
        out: list[str] = []
        for i, part in enumerate(parts):
            room = columns - cx if i == 0 else columns
            if cell_width(part) <= room:
                out.append(part)
                continue
            pieces = wrap_text(part, room, columns)
            if i != 0 and not pieces[0]:
                pieces = pieces[1:]
            out.extend(pieces)
        return out
