"""Coloured floods: lines stored as they came (``LineBuffer.append_coded``) must show
exactly what the general path shows, and stay within the scrollback cap."""

from __future__ import annotations

import tracemalloc

from hypothesis import given, settings
from hypothesis import strategies as st
from rich.color import Color
from rich.style import Style

from tui.core.term import Terminal

_SGR = st.sampled_from(["\x1b[0m", "\x1b[m", "\x1b[00m", "\x1b[1;32m", "\x1b[2m", "\x1b[31m",
                        "\x1b[38;5;100m", "\x1b[48;5;4m", "\x1b[1m", "\x1b[0;1m", "\x1b[7m"])
_TEXT = st.text(alphabet="abc xyz-:.", min_size=1, max_size=12)
_LINE = st.lists(st.one_of(_SGR, _TEXT), max_size=8).map("".join)
_END = st.sampled_from(["\r\n", "\r\n", "\r\n", "\x1b[0m\r\n", "\r", "\x1b[K\r\n", "\n"])
_STREAM = st.lists(st.tuples(_LINE, _END), min_size=1, max_size=40).map(
    lambda lines: "".join(line + end for line, end in lines))


def ansi(number: int) -> Style:
    return Style(color=Color.from_ansi(number))


def cells(term: Terminal) -> list[list[tuple[str, Style | None]]]:
    """Every line as (character, style) cells."""
    rows = []
    for index in range(term.lines_total):
        row: list[tuple[str, Style | None]] = []
        for text, style in term.line(index):
            row.extend((ch, style) for ch in text)
        rows.append(row)
    return rows


def state(term: Terminal) -> tuple[object, ...]:
    term.feed("Z")  # shows the pen the stream left behind
    return (cells(term), term.cursor, term.lines_total, term.first_line)


def coded_lines(term: Terminal) -> int:
    return sum(1 for line in term._main.lines if isinstance(line, str) and "\x1b" in line)


@settings(max_examples=150, deadline=None)
@given(_STREAM, st.integers(min_value=10, max_value=40))
def test_whole_pieces_show_what_single_characters_show(stream: str, columns: int) -> None:
    whole = Terminal(columns, 6, scrollback=50)
    whole.feed(stream)
    single = Terminal(columns, 6, scrollback=50)
    for char in stream:
        single.feed(char)
    assert state(whole) == state(single)


def test_a_log_flood_takes_the_coded_path_and_matches_the_general_path() -> None:
    stream = "".join(f"\x1b[2m08:15:{i % 60:02d}\x1b[0m \x1b[1;32mINFO\x1b[0m etcd: index {i}\r\n"
                     for i in range(300))
    whole = Terminal(80, 10, scrollback=100)
    for start in range(0, len(stream), 4096):
        whole.feed(stream[start:start + 4096])
    assert coded_lines(whole) > 50
    single = Terminal(80, 10, scrollback=100)
    for char in stream:
        single.feed(char)
    assert coded_lines(single) == 0
    assert state(whole) == state(single)
    last = whole.line(whole.lines_total - 2)
    assert [text for text, _ in last] == ["08:15:59", " ", "INFO", " etcd: index 299"]
    assert last[0][1] == Style(dim=True)
    assert whole.search("index 250") and whole.line_text(whole.search("index 250")[0]) \
        == "08:15:10 INFO etcd: index 250"


def test_a_line_left_coloured_falls_back_and_colours_the_next_line() -> None:
    term = Terminal(40, 5)
    term.feed("\x1b[31mred\r\nstill red\x1b[0m\r\nplain\r\n")
    assert term.line(0) == [("red", ansi(1))]
    assert term.line(1) == [("still red", ansi(1))]
    assert term.line(2) == [("plain", None)]


def test_editing_a_coded_line_keeps_its_colours() -> None:
    term = Terminal(40, 5)
    term.feed("".join(f"\x1b[32mok\x1b[0m {i}\r\n" for i in range(3)))
    term.feed("\x1b[2A\x1b[5GX")  # cursor into the second line, overwrite one cell
    assert term.line(1) == [("ok", ansi(2)), (" 1X", None)]
    assert term.line(2) == [("ok", ansi(2)), (" 2", None)]


def test_coloured_flood_memory_is_bounded_by_the_scrollback_cap() -> None:
    line = "\x1b[2m08:15:00\x1b[0m \x1b[1;32mINFO\x1b[0m etcd: applied index 123456\r\n"
    piece = line * 800
    term = Terminal(80, 24, scrollback=1000)
    for _ in range(5):
        term.feed(piece)
    tracemalloc.start()
    base, _ = tracemalloc.get_traced_memory()
    for _ in range(40):
        term.feed(piece)
    current, _ = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert term.lines_total == 1000 + 24
    assert current - base < 512 * 1024
