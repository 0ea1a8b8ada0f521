"""Terminal: turns a host's decoded output into the lines a console pane shows.

Two screens, as in xterm: the main screen, a :class:`LineScreen` with scrollback, and,
while a full-screen program runs, the alternate screen, a :class:`LineScreen` of the
same size without scrollback.  Both are emulated by the same code.  ``feed`` accepts
text in arbitrary pieces: an escape sequence split across two feeds is held back
until it is complete.

Views read ``lines_total`` / ``line(i)`` / ``line_key(i)`` / ``cursor`` and
repaint only when ``version`` moved.  Answers the terminal owes the program
(cursor position reports, device attributes) collect in :meth:`take_replies`.
"""

from __future__ import annotations

import re
from collections.abc import Hashable
from itertools import count

from tui.core.term.cells import Run, line_text, printable, runs_of
from tui.core.term.lines import LineScreen
from tui.core.term.sgr import apply_sgr

# Control characters that need interpretation (everything in C0 except LF, plus DEL
# and C1).  Output without any of them takes the plain fast path.
_CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f]")
_STATEFUL = re.compile("[\x0b\x0c\x0e\x0f\x1b\x80-\x9f]")
"""Characters that can change the terminal's state beyond the lines they print."""
SKIP_MIN = 256 * 1024
"""Pieces of output at least this long may skip lines that would scroll out unseen."""
_CSI = re.compile(r"\x1b\[([0-?]*)([ -/]*)([@-~])")
_CSI_PARTIAL = re.compile(r"\x1b\[[0-?\x00-\x17\x19\x1c-\x1f]*[ -/\x00-\x17\x19\x1c-\x1f]*\Z")
_CSI_LOOSE = re.compile(
    r"\x1b\[([0-?\x00-\x17\x19\x1c-\x1f]*)([ -/\x00-\x17\x19\x1c-\x1f]*)([@-~])")
"""A CSI with C0 controls inside: xterm executes them where they stand (``A ESC [ 2 BS C``
moves left, then right by two)."""
_C0 = re.compile("[\x00-\x1f]")
_CSI_PREFIX = re.compile(r"\x1b\[[0-?\x00-\x17\x19\x1c-\x1f]*[ -/\x00-\x17\x19\x1c-\x1f]*")
_BARE_LF = re.compile("(?<!\r)\n")
_OSC = re.compile(r"\x1b\]([^\x07\x1b]*)(?:\x07|\x1b\\)")
_STRING = re.compile(r"\x1b[P_^X][^\x07\x1b]*(?:\x07|\x1b\\)")
_STRING_PARTIAL = re.compile(r"\x1b[\]P_^X][^\x07\x1b]*\x1b?\Z")
_STYLED_SPAN = re.compile("(?:[^\x00-\x09\x0b-\x1f\x7f-\x9f]+|\x1b\\[[0-9;:]*m)+")
_SGR_SPLIT = re.compile("\x1b\\[([0-9;:]*)m")
_ESC = re.compile(r"\x1b([ -/]*)([0-~])")
_ESC_PARTIAL = re.compile(r"\x1b[ -/]*\Z")

MAX_PENDING = 65536
"""An unterminated escape sequence longer than this is dropped, not buffered."""

_ALT_MODES = (1049, 1047, 47)
_LINE_DRAWING = {ord(ascii_char): drawn for ascii_char, drawn in zip(
    "+,-.0`abcdefghijklmnopqrstuvwxyz{|}~",
    "→←↑↓█◆▒␉␌␍␊°±░␋┘┐┌└┼⎺⎻─⎼⎽├┤┴┬│≤≥π≠£·", strict=True)}
"""DEC special graphics (``ESC ( 0``): the characters that draw boxes."""
_generations = count(1)


class Terminal:
    """A terminal emulator sized ``columns`` x ``rows`` with ``scrollback`` lines.

    Attributes:
        title: last window title set with OSC 0/2.
        cursor_visible: DECTCEM (``CSI ?25 h/l``).
        app_cursor_keys: DECCKM (``CSI ?1 h``): arrows send ``ESC O A`` instead of ``ESC [ A``.
        bracketed_paste: ``CSI ?2004 h`` is on: pastes should be wrapped.
        bells: number of BEL characters received.
        newline_mode: LNM (``CSI 20 h``): a line feed also returns the carriage.  Off
            by default, as in xterm: a PTY turns ``\\n`` into ``\\r\\n`` itself, and a
            bare LF (raw-mode output) moves down without going back to column 0.
    """

    def __init__(self, columns: int = 80, rows: int = 24, scrollback: int = 10_000,
                 *, newline_mode: bool = False) -> None:
        self._main = LineScreen(columns, rows, scrollback)
        self._screen = self._main  # the screen being drawn on: main or alternate
        self.newline_mode = newline_mode
        self._alt: LineScreen | None = None
        self._alt_generation = 0
        self._pending = ""
        self._after_cr = False  # the last piece ended with CR
        self._version = 0
        self._replies: list[str] = []
        self._g0: dict[int, str] | None = None
        self._g1: dict[int, str] | None = None
        self._shifted = False
        self.title = ""
        self.cursor_visible = True
        self.app_cursor_keys = False
        self.bracketed_paste = False
        self.bells = 0

    # ------------------------------------------------------------ properties
    @property
    def columns(self) -> int:
        """Screen width in cells."""
        return self._main.columns

    @property
    def rows(self) -> int:
        """Screen height in rows."""
        return self._main.rows

    @property
    def version(self) -> int:
        """Bumped by every feed and resize; views skip repaints while it is unchanged."""
        return self._version

    @property
    def alt_screen(self) -> bool:
        """A full-screen program is using the alternate screen."""
        return self._alt is not None

    @property
    def lines_total(self) -> int:
        """Number of lines a view can show (scrollback + screen; the screen alone while
        the alternate screen is on)."""
        return self._screen.lines_total

    @property
    def first_line(self) -> int:
        """How many lines have dropped off the top of the scrollback so far.

        A view that is scrolled back subtracts the growth of this number from its
        offset to keep showing the same text.
        """
        return self._main.dropped

    @property
    def cursor(self) -> tuple[int, int] | None:
        """Cursor as (line index, column), or ``None`` when the program hid it."""
        if not self.cursor_visible:
            return None
        return self._screen.cursor()

    # --------------------------------------------------------------- reading
    def line(self, index: int) -> list[Run]:
        """Line ``index`` (0 = oldest shown) as ``(text, style)`` runs; blank if out of range."""
        stored = self._screen.line(index)
        if isinstance(stored, str) and "\x1b" not in stored:
            if self._alt is not None:
                stored = stored.rstrip(" ")
            return [(stored, None)] if stored else []
        runs = list(runs_of(stored))
        if self._alt is not None:
            _trim_blanks(runs)
        return runs

    def line_text(self, index: int) -> str:
        """Line ``index`` without styles."""
        if self._alt is not None:
            return "".join(text for text, _ in self.line(index))
        return line_text(self._screen.line(index))

    def line_key(self, index: int) -> Hashable:
        """A key that changes whenever line ``index`` changes (for render caches)."""
        screen = self._screen
        absolute = screen.dropped + index
        if self._alt is not None:
            return ("alt", self._alt_generation, absolute, screen.version_of(absolute))
        return (absolute, screen.version_of(absolute))

    def text(self) -> str:
        """Everything shown, one line per row (tests and copying)."""
        lines = [self.line_text(i) for i in range(self.lines_total)]
        while lines and not lines[-1]:
            lines.pop()
        return "\n".join(lines)

    def search(self, pattern: str | re.Pattern[str], *, ignore_case: bool = False) -> list[int]:
        """Indexes of the lines that contain ``pattern`` (a literal string or a regex)."""
        if isinstance(pattern, str):
            if not pattern:
                return []
            if ignore_case:
                pattern = re.compile(re.escape(pattern), re.IGNORECASE)
        hits: list[int] = []
        if isinstance(pattern, str):
            for i in range(self.lines_total):
                if pattern in self.line_text(i):
                    hits.append(i)
        else:
            finder = pattern.search
            for i in range(self.lines_total):
                if finder(self.line_text(i)):
                    hits.append(i)
        return hits

    def take_replies(self) -> str:
        """Answers owed to the program (cursor position, device attributes); cleared."""
        replies, self._replies = "".join(self._replies), []
        return replies

    # --------------------------------------------------------------- writing
    def feed(self, data: str) -> None:
        """Interpret a piece of output; incomplete escape sequences wait for the next piece."""
        if not data:
            return
        self._version += 1
        screen = self._screen
        self._main.stamp = self._version  # the feed may switch screens: stamp both
        if self._alt is not None:
            self._alt.stamp = self._version
        if not data.isascii():
            data = printable(data)
        if data:
            split_crlf = self._after_cr and data[0] == "\n"
            self._after_cr = data[-1] == "\r"
            data = self._line_ends(data, split_crlf)
        if self._pending:  # held back from the last piece, already prepared
            data = self._pending + data
            self._pending = ""
        if not data:
            return
        if len(data) > SKIP_MIN and self._alt is None and self._main.scrolls_plainly():
            data = self._skip_flood(data)
        if not _CONTROL.search(data) and screen.plain_ready(data[0]):
            screen.append_plain(data)
        else:
            self._interpret(data)
        self._main.sync()
        if self._alt is not None:
            self._alt.sync()

    def _line_ends(self, data: str, split_crlf: bool) -> str:
        """A new piece of output with CR LF as LF (line mode: the parser's LF returns the
        carriage too) and each bare LF (raw-mode output) as VT, which only moves down.
        ``split_crlf``: the piece starts with the LF of a CR LF cut in two."""
        if "\n" not in data:
            return data
        if self.newline_mode:  # LNM: every LF returns the carriage
            return data.replace("\r\n", "\n") if "\r\n" in data else data
        if split_crlf:
            data = "\r" + data  # the CR ran already: running it again changes nothing
        if "\r\n" in data:
            lf_only = data.replace("\r\n", "\n")
            if lf_only.count("\n") == len(data) - len(lf_only):
                return lf_only
            return _BARE_LF.sub("\x0b", data).replace("\r\n", "\n")
        return _BARE_LF.sub("\x0b", data)

    def _skip_flood(self, data: str) -> str:
        """``data`` without a head that would scroll out of the whole buffer unseen.

        A flood (``seq 1 1000000``) arrives in pieces of up to a megabyte.  When a piece
        holds far more lines than the scrollback keeps, and the part before its last
        ``keep`` lines has no escape sequence or charset shift (so it cannot change the
        pen, modes or screen), that part is counted as scrolled out without being
        scanned, split or stored: the rest of the piece pushes it out anyway.  The text
        shown is the same; only lines wrapped in the skipped part are not counted."""
        keep = self._main.scrollback + self._main.rows + 1
        total = data.count("\n")
        if total <= 2 * keep:
            return data
        size = len(data)
        tail = size * (keep + 64) // total  # characters of the last keep lines, if even
        while True:
            cut = data.find("\n", max(0, size - tail)) + 1
            if cut <= 0:
                return data
            kept = data.count("\n", cut)
            if kept >= keep:
                break
            if tail >= size:
                return data
            tail *= 2
        head = data[:cut]
        if _STATEFUL.search(head) if not head.isascii() else (
                "\x1b" in head or "\x0e" in head or "\x0f" in head
                or "\x0b" in head or "\x0c" in head):
            return data
        self._main.scroll_out(total - kept)
        return data[cut:]

    def resize(self, columns: int, rows: int) -> None:
        """Change the size; the alternate screen, if active, is resized too."""
        columns, rows = max(1, columns), max(1, rows)
        if (columns, rows) == (self.columns, self.rows):
            return
        self._version += 1
        self._main.stamp = self._version
        self._main.resize(columns, rows)
        if self._alt is not None:
            self._alt.stamp = self._version
            self._alt.resize(columns, rows)
            self._alt.sync()

    # ------------------------------------------------------------ the parser
    def _interpret(self, data: str) -> None:
        pos, size = 0, len(data)
        if "\x1b" in data and self._screen.plain_ready(data[0]):
            cut = data.rfind("\n") + 1
            if (cut > 0 and data.find("\r", 0, cut) < 0
                    and self._screen.append_coded(data[:cut])):
                pos = cut
        while pos < size:
            screen = self._screen  # an escape sequence may have switched screens
            if screen.plain_ready(data[pos]):
                span = _STYLED_SPAN.match(data, pos)
                if (span is not None and "\x1b" in span.group()
                        and screen.append_styled(_SGR_SPLIT.split(span.group()))):
                    pos = span.end()
                    continue
            match = _CONTROL.search(data, pos)
            start = size if match is None else match.start()
            if start > pos:
                self._text(data[pos:start])
            if match is None:
                return
            char = data[start]
            if char != "\x1b":
                self._control(char)
                pos = start + 1
                continue
            pos = self._escape(data, start)
            if pos < 0:
                return

    def _escape(self, data: str, start: int) -> int:
        """Handle the escape sequence at ``start``; return the position after it.

        Returns -1 when the sequence is incomplete (kept for the next feed).
        """
        if start + 1 >= len(data):
            return self._hold(data, start)
        kind = data[start + 1]
        if kind == "[":
            match = _CSI.match(data, start)
            if match is None:
                match = _CSI_LOOSE.match(data, start)
                if match is not None:
                    self._csi_with_controls(match)
                    return match.end()
                prefix = _CSI_PARTIAL.match(data, start, len(data))
                if prefix is None:
                    cut = _CSI_PREFIX.match(data, start)
                    after = data[cut.end():cut.end() + 1] if cut is not None else ""
                    if cut is not None and after == "\x1b":
                        return cut.end()  # ESC abandons the sequence and starts another
                    if cut is not None and after in ("\x18", "\x1a"):
                        return cut.end() + 1  # CAN / SUB cancel it
                if prefix is not None:
                    return self._hold(data, start)
                return start + 1  # malformed: drop the ESC, show the rest as text
            self._csi(match.group(1), match.group(2), match.group(3), match.group(0))
            return match.end()
        if kind == "]":
            match = _OSC.match(data, start)
            if match is None:
                return self._hold(data, start) if _STRING_PARTIAL.match(data, start) \
                    else start + 1
            self._osc(match.group(1))
            return match.end()
        if kind in "P_^X":
            match = _STRING.match(data, start)
            if match is None:
                return self._hold(data, start) if _STRING_PARTIAL.match(data, start) \
                    else start + 1
            return match.end()
        match = _ESC.match(data, start)
        if match is None:
            return self._hold(data, start) if _ESC_PARTIAL.match(data, start) else start + 1
        self._esc(match.group(1), match.group(2), match.group(0))
        return match.end()

    def _csi_with_controls(self, match: re.Match[str]) -> None:
        """Execute the controls inside a CSI, then the CSI without them."""
        params, intermediate, final = match.groups()
        for control in _C0.findall(params + intermediate):
            if control == "\n":
                self._screen.newline()  # LF here stands for CR LF (see feed)
            else:
                self._control(control)
        if final == "b":
            return  # a control in between: nothing left to repeat (as tmux)
        params, intermediate = _C0.sub("", params), _C0.sub("", intermediate)
        self._csi(params, intermediate, final, f"\x1b[{params}{intermediate}{final}")

    def _hold(self, data: str, start: int) -> int:
        if len(data) - start <= MAX_PENDING:
            self._pending = data[start:]
        return -1

    # ------------------------------------------------------------ the screens
    def _text(self, text: str) -> None:
        main = self._screen
        if main.plain_ready(text[0]):
            main.append_plain(text)
            return
        lines = text.split("\n")
        if lines[0]:
            main.write(lines[0])
        for line in lines[1:]:
            main.newline()
            if line:
                main.write(line)

    def _control(self, char: str) -> None:
        screen = self._screen
        if char == "\r":
            screen.carriage_return()
        elif char == "\b":
            screen.backspace()
        elif char == "\t":
            screen.tab()
        elif char in "\x0b\x0c":
            screen.linefeed()
        elif char == "\x07":
            self.bells += 1
        elif char == "\x0e":
            self._shifted = True
            screen.charset = self._g1
        elif char == "\x0f":
            self._shifted = False
            screen.charset = self._g0

    def _esc(self, intermediate: str, final: str, raw: str) -> None:
        screen = self._screen
        if intermediate in ("(", ")"):
            table = _LINE_DRAWING if final == "0" else None
            if intermediate == "(":
                self._g0 = table
            else:
                self._g1 = table
            screen.charset = self._g1 if self._shifted else self._g0
            return
        if final == "c" and not intermediate:
            self._reset()
            return
        if intermediate == "#" and final == "8":
            screen.align()
            return
        if intermediate:
            return
        if final == "H":
            screen.set_tab_stop()
        elif final == "7":
            screen.save_cursor()
        elif final == "8":
            screen.restore_cursor()
        elif final == "D":
            screen.index()
        elif final == "E":
            screen.newline()
        elif final == "M":
            screen.reverse_index()

    def _osc(self, body: str) -> None:
        code, _, text = body.partition(";")
        if code in ("0", "2"):
            self.title = text

    def _csi(self, params: str, intermediate: str, final: str, raw: str) -> None:
        private = params[:1] if params[:1] in "?<=>" else ""
        if private:
            params = params[1:]
        if final in "hl" and private == "?":
            self._private_modes(params, final == "h")
            return
        if final in "hl" and not private and not intermediate:
            self._ansi_modes(params, final == "h")
            return
        if final == "n" and not private:
            self._report(params)
            return
        if final == "c" and private in ("", ">"):
            self._replies.append("\x1b[>0;10;1c" if private == ">" else "\x1b[?1;2c")
            return
        if private == "?" and final in "JK" and not intermediate:
            private = ""  # DECSED / DECSEL: erase, as nothing here is protected
        if private or intermediate:
            return  # (``CSI > 4;1 m`` and the like: modes this terminal does not have)
        self._screen_csi(params, final)

    def _screen_csi(self, params: str, final: str) -> None:
        screen = self._screen
        if final == "m":
            screen.set_pen(apply_sgr(screen.pen, params))
            return
        args = [int(p) if p.isdigit() else 0 for p in params.split(";")] if params else []
        first = args[0] if args else 0
        count = max(1, first)
        if final == "K":
            screen.erase_in_line(first)
        elif final == "J":
            screen.erase_in_display(first)
        elif final == "A":
            screen.move_by(rows=-count)
        elif final in "Be":
            screen.move_by(rows=count)
        elif final in "Ca":
            screen.move_by(columns=count)
        elif final == "D":
            screen.move_by(columns=-count)
        elif final in "G`":
            screen.move_to(column=count - 1)
        elif final in "Hf":
            column = args[1] if len(args) > 1 else 0
            screen.move_to(count - 1, max(1, column) - 1)
        elif final == "d":
            screen.move_to(row=count - 1)
        elif final == "E":
            screen.move_by(rows=count)
            screen.carriage_return()
        elif final == "F":
            screen.move_by(rows=-count)
            screen.carriage_return()
        elif final == "L":
            screen.insert_lines(count)
        elif final == "M":
            screen.delete_lines(count)
        elif final == "@":
            screen.insert_characters(count)
        elif final == "P":
            screen.delete_characters(count)
        elif final == "X":
            screen.erase_characters(count)
        elif final == "S":
            screen.scroll_up(count)
        elif final == "T":
            screen.scroll_down(count)
        elif final == "r":
            screen.set_margins(first, args[1] if len(args) > 1 else 0)
        elif final == "b":
            screen.repeat(count)
        elif final == "I":
            screen.tab(count)
        elif final == "Z":
            screen.back_tab(count)
        elif final == "g":
            screen.clear_tab_stops(first)
        elif final == "s":
            screen.save_cursor()
        elif final == "u":
            screen.restore_cursor()

    def _ansi_modes(self, params: str, on: bool) -> None:
        """SM/RM: IRM (4) and LNM (20)."""
        for mode in (int(p) for p in params.split(";") if p.isdigit()):
            if mode == 20:
                self.newline_mode = on
            elif mode == 4:
                self._screen.insert_mode = on

    def _private_modes(self, params: str, on: bool) -> None:
        modes = [int(p) for p in params.split(";") if p.isdigit()]
        for mode in modes:
            if mode == 1:
                self.app_cursor_keys = on
            elif mode == 25:
                self.cursor_visible = on
            elif mode == 2004:
                self.bracketed_paste = on
            elif mode == 7:
                self._screen.autowrap = on
            elif mode == 6:
                self._screen.origin = on
                self._screen.move_to(0, 0)
        alt_modes = [m for m in modes if m in _ALT_MODES]
        if alt_modes and on and self._alt is None:
            if 1049 in alt_modes:
                self._main.save_cursor()
            self._enter_alt()
        elif alt_modes and not on:
            if self._alt is not None:
                self._leave_alt()
            if 1049 in alt_modes:  # DECRC, even when the alternate screen was not on
                self._main.restore_cursor()

    def _report(self, params: str) -> None:
        if params == "5":
            self._replies.append("\x1b[0n")
        elif params == "6":
            screen = self._screen
            row, column = screen.cy, min(screen.cx, self.columns - 1)
            if screen.origin:
                row -= screen.margin_top
            self._replies.append(f"\x1b[{row + 1};{column + 1}R")

    def _enter_alt(self) -> None:
        """Switch to a blank alternate screen; modes and the pen carry over (they belong
        to the terminal, not to a screen), the cursor stays where it is."""
        main = self._main
        main.sync()
        alt = LineScreen(main.columns, main.rows, 0)
        _carry(main, alt)
        alt.cy, alt.cx = main.cy, min(main.cx, main.columns - 1)
        alt.stamp = main.stamp
        self._alt = self._screen = alt
        self._alt_generation = next(_generations)

    def _leave_alt(self) -> None:
        """Back to the main screen, the cursor where the program left it (mode 1049 then
        restores the one saved on entry)."""
        alt, main = self._alt, self._main
        if alt is not None:
            _carry(alt, main)
            main.cy, main.cx = min(alt.cy, main.rows - 1), min(alt.cx, main.columns)
        self._alt = None
        self._screen = main

    def _reset(self) -> None:
        if self._alt is not None:
            self._leave_alt()
        self._g0 = self._g1 = None
        self._shifted = False
        self._main.reset()
        self.cursor_visible = True
        self.app_cursor_keys = False
        self.bracketed_paste = False


def _trim_blanks(runs: list[Run]) -> None:
    """Drop the trailing blanks that show nothing (a full-screen program pads its rows
    with spaces; they are not text)."""
    while runs:
        text, style = runs[-1]
        if style is not None and (style.bgcolor or style.reverse or style.underline
                                  or style.strike or style.overline):
            return
        stripped = text.rstrip(" ")
        if stripped:
            runs[-1] = (stripped, style)
            return
        runs.pop()


def _carry(source: LineScreen, target: LineScreen) -> None:
    """Copy what belongs to the terminal rather than to a screen: pen, character set,
    autowrap, insert and origin modes, tab stops."""
    target.set_pen(source.pen)
    target.charset = source.charset
    target.autowrap = source.autowrap
    target.insert_mode = source.insert_mode
    target.origin = source.origin
    target.tab_stops = None if source.tab_stops is None else list(source.tab_stops)
