"""Differential test: the Terminal's line emulation against an independent grid (pyte).

Both screens of a Terminal (main and alternate) must show what the grid shows (text,
styles, cursor) for any mix of text, wide characters, CR/LF/BS/TAB, cursor movement,
erase, insert/delete characters and lines, scroll regions, index/reverse index and
save/restore.  The grid is pyte with the xterm corrections in
``tests/support/pyte_grid.py``; the cases at the end pin those behaviours on the
Terminal's alternate screen.
"""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from rich.style import Style

from tests.support.pyte_grid import AltScreen
from tui.core.term import Terminal

COLUMNS, ROWS = 12, 5

_text = st.text(alphabet="abcdefgh ", min_size=1, max_size=15)
_wide = st.text(alphabet="日本éa✓", min_size=1, max_size=8)
_n = st.integers(min_value=1, max_value=4)
_row = st.integers(min_value=1, max_value=ROWS)
_col = st.integers(min_value=1, max_value=COLUMNS)

_op = st.one_of(
    _text, _text, _wide,
    st.sampled_from(["\r\n", "\r", "\b", "\t", "\x1b[K", "\x1b[1K", "\x1b[2K", "\x1b[J",
                     "\x1b[1J", "\x1b[2J", "\x1bM", "\x1bD", "\x1bE", "\x1b7", "\x1b8",
                     "\x1b[r", "\x1b[31m", "\x1b[1;35m", "\x1b[m"]),
    st.builds("\x1b[{}{}".format, _n, st.sampled_from("ABCD@PXLM")),
    st.builds("\x1b[{}G".format, _col),
    st.builds("\x1b[{};{}H".format, _row, _col),
    st.builds("\x1b[{};{}r".format, _row, _row),
)


def _cells(runs: list[tuple[str, Style | None]] | tuple[tuple[str, Style | None], ...],
           ) -> list[tuple[str, Style | None]]:
    """Per-character cells; blanks that look like nothing compare as plain blanks."""
    cells: list[tuple[str, Style | None]] = []
    for text, style in runs:
        invisible = style is None or not (style.bgcolor or style.reverse or style.underline)
        cells.extend((" ", None) if char == " " and invisible else (char, style)
                     for char in text)
    while cells and cells[-1] == (" ", None):
        cells.pop()
    return cells


@settings(max_examples=300, deadline=None)
@given(st.lists(_op, min_size=1, max_size=25), st.sampled_from(["", "\x1b[?1049h"]))
def test_line_screen_matches_the_grid(ops: list[str], screen: str) -> None:
    data = "\x1b7" + "".join(ops)  # a saved cursor exists, so every restore is defined
    term = Terminal(COLUMNS, ROWS, scrollback=100)
    term.feed(screen + data)
    grid = AltScreen(COLUMNS, ROWS)
    grid.feed([data])
    first = term.lines_total - ROWS
    assert [_cells(term.line(first + y)) for y in range(ROWS)] == \
        [_cells(grid.line(y)) for y in range(ROWS)]
    row, column = grid.cursor()
    assert term.cursor == (first + row, column)


def _grid(data: str, columns: int = COLUMNS, rows: int = ROWS) -> list[str]:
    """What the Terminal's alternate screen shows for ``data``."""
    term = Terminal(columns, rows)
    term.feed("\x1b[?1049h" + data)
    assert term.alt_screen
    return [term.line_text(y) for y in range(rows)]


def test_grid_delete_lines_clears_rows_below_that_were_never_drawn() -> None:
    assert _grid("1\r\n2\r\n3\x1b[2;1H\x1b[2M") == ["1", "", "", "", ""]


def test_grid_insert_characters_drops_what_leaves_the_margin() -> None:
    assert _grid("abcdefghijkl\r\x1b[@\x1b[P")[0] == "abcdefghijk"


def test_grid_wide_character_wraps_instead_of_straddling_the_margin() -> None:
    assert _grid("abcdefghijk日")[:2] == ["abcdefghijk", "日"]


def test_grid_next_line_returns_the_carriage() -> None:
    assert _grid("ab\x1bEcd")[:2] == ["ab", "cd"]


def test_grid_cursor_above_the_region_is_not_pulled_into_it() -> None:
    assert _grid("\x1b[3;5r\x1b[1;1H\x1bMx\x1b[Ay")[0] == "xy"


def test_grid_restore_can_be_repeated() -> None:
    assert _grid("\x1b[2;3H\x1b7\x1b8a\x1b[5;1H\x1b8b")[1] == "  b"


def test_grid_orphaned_half_of_a_wide_character_shows_as_blank() -> None:
    assert _grid("日本\x1b[1GX") == ["X 本", "", "", "", ""]
