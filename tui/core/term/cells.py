"""Cells and stored lines: widths, wrapping, and the compact line form.

A stored line is a plain ``str`` when unstyled, otherwise a tuple of ``(text, style)``
runs, or, as a coloured flood stores it, a *coded* ``str``: the line as the program
sent it, SGR sequences included, starting from the default pen (:func:`decode` turns it
into runs when a view asks for it).  While a line is edited it is a list of cells (one
string per cell, ``""`` for the right half of a wide character) with a parallel list of
styles.
"""

from __future__ import annotations

import re
import unicodedata
from itertools import groupby
from operator import itemgetter

from rich.cells import cell_len, get_character_cell_size
from rich.style import Style

from tui.core.term.sgr import DEFAULT_PEN, Pen, apply_sgr, pen_style

Run = tuple[str, Style | None]
Line = str | tuple[Run, ...]
"""A stored line: plain text, or a tuple of styled runs."""


char_width = get_character_cell_size
"""Cells one character takes (0, 1 or 2), as Textual (Rich) measures it: a pane's rows
are laid out with the same widths Textual later uses to draw them."""

_BIDI_CONTROLS = frozenset({"LRE", "RLE", "LRO", "RLO", "PDF", "LRI", "RLI", "FSI", "PDI"})
REPLACEMENT = "\ufffd"


PRINTABLE_CACHE = 65536
"""Code points :data:`PRINTABLE` remembers before it starts again."""


class _Printable(dict[int, "str | None"]):
    """``str.translate`` table making decoded output safe to draw in a pane (filled lazily).

    Surrogates, unassigned code points, line/paragraph separators, bidirectional
    embedding/override/isolate controls and interlinear annotation marks become U+FFFD,
    one cell wide: drawn by the outer terminal they could move or reorder what follows.
    ZERO WIDTH JOINER and VARIATION SELECTOR-16 are dropped: Rich measures the grapheme
    clusters they build as one wide cell, which a cell grid cannot hold.  Controls stay
    for the parser, which interprets or ignores them.
    """

    def __missing__(self, code: int) -> str | None:
        if len(self) >= PRINTABLE_CACHE:
            self.clear()  # binary noise meets many code points: keep the table small
        char = chr(code)
        category = unicodedata.category(char)
        result: str | None = char
        if code in (0x200D, 0xFE0F):
            result = None
        elif (category in ("Cs", "Cn", "Zl", "Zp") or 0xFFF9 <= code <= 0xFFFB
              or (category == "Cf" and unicodedata.bidirectional(char) in _BIDI_CONTROLS)):
            result = REPLACEMENT
        self[code] = result
        return result


PRINTABLE = _Printable()


def printable(text: str) -> str:
    """``text`` with what cannot be drawn safely replaced (see :class:`_Printable`)."""
    return text if text.isascii() else text.translate(PRINTABLE)


def cell_width(text: str) -> int:
    """Number of terminal cells ``text`` occupies (wide characters count 2)."""
    if text.isascii():
        return len(text)
    return sum(map(char_width, text)) if len(text) < 64 else cell_len(text)


SGR_SPLIT = re.compile("\x1b\\[([0-9;:]*)m")
"""``re.split`` by it gives text (even items) and SGR parameters (odd items)."""


def decode(text: str, pen: Pen = DEFAULT_PEN) -> tuple[Line, Pen]:
    """Runs of ``text`` (printable characters and SGR sequences) drawn from ``pen``, and
    the pen after it."""
    tokens = SGR_SPLIT.split(text)
    runs: list[Run] = []
    style = pen_style(pen)
    for i, token in enumerate(tokens):
        if i & 1:
            pen = apply_sgr(pen, token)
            style = pen_style(pen)
        elif token:
            if runs and runs[-1][1] == style:
                runs[-1] = (runs[-1][0] + token, style)
            else:
                runs.append((token, style))
    if not any(style for _, style in runs):
        return "".join(text for text, _ in runs), pen
    return tuple(runs), pen


def line_text(line: Line) -> str:
    """The characters of a stored line, without styles."""
    if isinstance(line, str):
        return line if "\x1b" not in line else SGR_SPLIT.sub("", line)
    return "".join(text for text, _ in line)


def line_cells(line: Line) -> int:
    """Cell width of a stored line."""
    return cell_width(line_text(line))


def wrap_text(text: str, first_room: int, columns: int) -> list[str]:
    """Split ``text`` into pieces: the first at most ``first_room`` cells wide, the
    others at most ``columns``.  The first piece may be empty; no other piece is."""
    if text.isascii():
        pieces = [text[:first_room]]
        pieces.extend(text[i:i + columns] for i in range(first_room, len(text), columns))
        return pieces
    pieces = []
    room, start, used = first_room, 0, 0
    for i, ch in enumerate(text):
        width = char_width(ch)
        if used + width > room:
            pieces.append(text[start:i])
            start, used, room = i, 0, columns
        used += width
    pieces.append(text[start:])
    return pieces


def runs_of(line: Line) -> tuple[Run, ...]:
    """A stored line as runs (a plain line is one unstyled run)."""
    if isinstance(line, str):
        if "\x1b" in line:
            return runs_of(decode(line)[0])
        return ((line, None),) if line else ()
    return line


def concat(head: Line, tail: Line) -> Line:
    """``head`` followed by ``tail``, merging the runs that meet if they share a style."""
    if (isinstance(head, str) and isinstance(tail, str)
            and "\x1b" not in head and "\x1b" not in tail):
        return head + tail
    left, right = runs_of(head), runs_of(tail)
    if left and right and left[-1][1] == right[0][1]:
        return (*left[:-1], (left[-1][0] + right[0][0], left[-1][1]), *right[1:])
    return (*left, *right)


def repair_wide(chars: list[str]) -> None:
    """After an edit split a wide character, blank its remaining half (as xterm does)."""
    i, size = 0, len(chars)
    while i < size:
        char = chars[i]
        if char == "":
            chars[i] = " "  # a right half whose wide character is gone
        elif not char.isascii() and char_width(char[0]) == 2:
            if i + 1 < size and chars[i + 1] == "":
                i += 2
                continue
            chars[i] = " "  # a wide character whose right half is gone
        i += 1


def compact(chars: list[str], styles: list[Style | None]) -> Line:
    """Turn a per-cell line back into the stored form."""
    if not any(styles):
        return "".join(chars)
    return tuple(("".join(c for c, _ in group), style)
                 for style, group in groupby(zip(chars, styles, strict=True),
                                             key=itemgetter(1)))
