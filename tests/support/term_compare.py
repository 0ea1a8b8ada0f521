"""Screens of the pane's ``Terminal`` and of tmux, in one comparable form.

A :class:`Screen` holds the visible rows as cells (character plus the attributes a user
sees: colours and bold/dim/italic/underline/blink/reverse/strike), the cursor, the
scrollback length and whether the alternate screen is on.  :func:`terminal_screen`
builds it from a ``Terminal`` fed a byte stream in pieces of a given size;
:func:`tmux_screen` from a tmux capture of the same bytes.  :func:`differences` lists
what differs, in words, comparing only what tmux can report: ``capture-pane`` trims
trailing blanks and does not report the colour of erased cells, so cells past the end of
tmux's row are compared by text only.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass

from pyte.charsets import VT100_MAP
from rich.color import ColorType
from rich.style import Style

from tests.support.tmux_screen import PaneState
from tui.core.term import Terminal
from tui.core.term.sgr import (
    BLINK,
    BOLD,
    DEFAULT_PEN,
    DIM,
    ITALIC,
    REVERSE,
    STRIKE,
    UNDERLINE,
    Colour,
    apply_sgr,
)

SEEN = BOLD | DIM | ITALIC | UNDERLINE | BLINK | REVERSE | STRIKE
Attrs = tuple[Colour, Colour, int]
Cell = tuple[str, Attrs]
PLAIN: Attrs = (None, None, 0)
SGR_SPLIT = re.compile("\x1b\\[([0-9;:]*)m")
_LINE_DRAWING = {i: c for i, c in enumerate(VT100_MAP) if ord(c) != i}


@dataclass(frozen=True)
class Screen:
    """What a user sees: rows of cells, cursor, scrollback length, alternate screen."""

    rows: tuple[tuple[Cell, ...], ...]
    cursor: tuple[int, int]
    history: int | None
    alternate: bool

    def text(self) -> list[str]:
        """The rows as text, trailing blanks removed."""
        return ["".join(ch for ch, _ in row).rstrip() for row in self.rows]


def _colour(colour: object) -> Colour:
    if colour is None:
        return None
    kind = getattr(colour, "type", None)
    if kind is ColorType.DEFAULT:
        return None
    if kind in (ColorType.STANDARD, ColorType.EIGHT_BIT):
        return int(colour.number)  # type: ignore[attr-defined]
    triplet = colour.triplet  # type: ignore[attr-defined]
    return (triplet.red, triplet.green, triplet.blue)


def style_attrs(style: Style | None) -> Attrs:
    """A Rich style as comparable attributes."""
    if style is None:
        return PLAIN
    flags = ((BOLD if style.bold else 0) | (DIM if style.dim else 0)
             | (ITALIC if style.italic else 0) | (UNDERLINE if style.underline else 0)
             | (BLINK if style.blink else 0) | (REVERSE if style.reverse else 0)
             | (STRIKE if style.strike else 0))
    return (_colour(style.color), _colour(style.bgcolor), flags)


def terminal_screen(data: bytes, columns: int, rows: int, chunk: int,
                    scrollback: int = 2000) -> Screen:
    """Feed ``data`` to a fresh Terminal ``chunk`` bytes at a time (decoded as a pane
    decodes them) and read the visible screen back."""
    term = Terminal(columns, rows, scrollback=scrollback)
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    for start in range(0, len(data), chunk):
        term.feed(decoder.decode(data[start:start + chunk]))
        term.take_replies()
    term.feed(decoder.decode(b"", final=True))
    total = term.lines_total
    shown: list[tuple[Cell, ...]] = []
    for index in range(total - rows, total):
        cells: list[Cell] = []
        for text, style in term.line(index):
            attrs = style_attrs(style)
            cells.extend((ch, attrs) for ch in text)
        shown.append(tuple(cells))
    saved = term.cursor_visible
    term.cursor_visible = True
    row, column = term.cursor or (0, 0)
    term.cursor_visible = saved
    history = None if term.alt_screen else total - rows
    return Screen(tuple(shown), (row - (total - rows), column), history, term.alt_screen)


def tmux_screen(state: PaneState, columns: int) -> Screen:
    """A tmux capture as a :class:`Screen` (attributes carry over from row to row, as
    ``capture-pane -e`` writes them)."""
    pen = DEFAULT_PEN
    drawing = False  # tmux writes line-drawing characters as ASCII between SO and SI
    shown: list[tuple[Cell, ...]] = []
    for line in state.rows:
        cells: list[Cell] = []
        for i, token in enumerate(SGR_SPLIT.split(line)):
            if i & 1:
                pen = apply_sgr(pen, token)
                continue
            attrs = (pen[0], pen[1], pen[2] & SEEN)
            for ch in token:
                if ch in "\x0e\x0f":
                    drawing = ch == "\x0e"
                    continue
                cells.append((_LINE_DRAWING.get(ord(ch), ch) if drawing else ch, attrs))
        shown.append(tuple(cells))
    row, column = state.cursor
    return Screen(tuple(shown), (row, min(column, columns - 1)),
                  None if state.alternate else state.history, state.alternate)


def differences(ours: Screen, reference: Screen, *, history: bool = True) -> list[str]:
    """What differs between two screens, one sentence each (empty when they match);
    ``history=False`` leaves the scrollback length out."""
    found: list[str] = []
    if ours.alternate != reference.alternate:
        found.append(f"alternate screen {ours.alternate} vs {reference.alternate}")
    if ours.cursor != reference.cursor:
        found.append(f"cursor {ours.cursor} vs {reference.cursor}")
    if history and ours.history != reference.history:
        found.append(f"scrollback {ours.history} vs {reference.history} lines")
    for y, (mine, theirs) in enumerate(zip(ours.text(), reference.text(), strict=False)):
        if mine != theirs:
            found.append(f"row {y}: {mine!r} vs {theirs!r}")
    for y, (mine_row, their_row) in enumerate(zip(ours.rows, reference.rows, strict=False)):
        for x, (_, attrs) in enumerate(their_row):
            if x < len(mine_row):
                mine_attrs = mine_row[x][1]
                mine_char = mine_row[x][0]
            else:
                mine_attrs, mine_char = PLAIN, " "
            if mine_char == " " and their_row[x][0] == " " and attrs[2] == 0 \
                    and attrs[1] == mine_attrs[1] and not mine_attrs[2] & (UNDERLINE | REVERSE):
                continue  # a blank: its foreground cannot be seen
            if (attrs[0], attrs[1], attrs[2]) != (mine_attrs[0], mine_attrs[1],
                                                 mine_attrs[2] & SEEN):
                found.append(f"row {y} column {x} {their_row[x][0]!r}: attributes"
                             f" {mine_attrs} vs {attrs}")
                break
    return found
