"""Cells and stored lines: widths, wrapping, and the compact line form.

A stored line is a plain ``str`` when unstyled, otherwise a tuple of ``(text, style)``
runs.  While a line is edited it is a list of cells (one string per cell, ``""`` for
the right half of a wide character) with a parallel list of styles.
"""

from __future__ import annotations

from itertools import groupby
from operator import itemgetter

from rich.style import Style
from wcwidth import wcswidth, wcwidth

Run = tuple[str, Style | None]
Line = str | tuple[Run, ...]
"""A stored line: plain text, or a tuple of styled runs."""


def cell_width(text: str) -> int:
    """Number of terminal cells ``text`` occupies (wide characters count 2)."""
    if text.isascii():
        return len(text)
    width = wcswidth(text)
    return width if width >= 0 else len(text)


def line_text(line: Line) -> str:
    """The characters of a stored line, without styles."""
    return line if isinstance(line, str) else "".join(text for text, _ in line)


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
        width = max(wcwidth(ch), 0)
        if used + width > room:
            pieces.append(text[start:i])
            start, used, room = i, 0, columns
        used += width
    pieces.append(text[start:])
    return pieces


def runs_of(line: Line) -> tuple[Run, ...]:
    """A stored line as runs (a plain line is one unstyled run)."""
    if isinstance(line, str):
        return ((line, None),) if line else ()
    return line


def concat(head: Line, tail: Line) -> Line:
    """``head`` followed by ``tail``, merging the runs that meet if they share a style."""
    if isinstance(head, str) and isinstance(tail, str):
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
        elif not char.isascii() and wcwidth(char[0]) == 2:
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
