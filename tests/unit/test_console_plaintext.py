"""PlainText: escape sequences, carriage returns, split UTF-8 and split sequences."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from tui.core.console.plaintext import PlainText, plain, strip_ansi

PIECES = st.sampled_from([
    "a", "é", "→", " ", "\n", "\r", "\r\n", "\b", "\t", "\x1b[31m", "\x1b[0m", "\x1b[K",
    "\x1b[2K", "\x1b]0;title\x07", "\x1b(B", "\x1b", "[", "x\x07",
])


def test_colours_titles_and_charset_switches_are_removed() -> None:
    text = ("\x1b]0;root@controller-0: ~\x07\x1b[01;32mroot@controller-0\x1b[00m:"
            "\x1b[01;34m~\x1b(B\x1b[m# ls\r\n\x1b[0m\x1b[01;34metc\x1b[0m  var\r\n")
    assert plain(text) == "root@controller-0:~# ls\netc  var"
    assert strip_ansi("\x1b[1mbold\x1b[0m\x07") == "bold"


def test_carriage_return_progress_bar_ends_as_one_line() -> None:
    converter = PlainText()
    lines: list[str] = []
    for percent in range(0, 101, 10):
        lines += converter.feed(f"\r[{'#' * (percent // 10):<10}] {percent:3d}%")
    lines += converter.feed("\r\n")
    assert lines == ["[##########] 100%"]


def test_shorter_overwrite_keeps_the_tail_unless_the_line_is_erased() -> None:
    assert plain("downloading\rdone\n") == "doneloading"
    assert plain("downloading\r\x1b[Kdone\n") == "done"
    assert plain("downloading\r\x1b[2Kdone\n") == "done"
    assert plain("abc\b\bX\n") == "aXc"


def test_utf8_and_escape_sequences_split_across_chunks() -> None:
    converter = PlainText()
    data = "é→ \x1b[31mred\x1b[0m \x1b]0;title\x1b\\ok\n".encode()
    lines: list[str] = []
    for index in range(len(data)):
        lines += converter.feed(data[index:index + 1])
    assert lines == ["é→ red ok"]
    assert converter.flush() is None


def test_partial_line_is_kept_until_flush() -> None:
    converter = PlainText()
    assert converter.feed("root@c0:~# ") == []
    assert converter.partial == "root@c0:~# "
    assert converter.feed("echo hi\r\nhi\r\nroot@c0:~# ") == ["root@c0:~# echo hi", "hi"]
    assert converter.flush() == "root@c0:~# "


def test_a_stray_escape_is_dropped_not_buffered_forever() -> None:
    converter = PlainText()
    assert converter.feed("a\x1b\x01b\n") == ["ab"]
    assert converter.feed("tail \x1b[") == []
    assert converter.flush() == "tail "


@given(st.lists(PIECES, max_size=40), st.lists(st.integers(0, 400), max_size=8))
def test_any_split_of_the_bytes_gives_the_same_lines(pieces: list[str], cuts: list[int]) -> None:
    data = "".join(pieces).encode()
    whole = PlainText()
    expected = whole.feed(data)
    expected_rest = whole.flush()
    split = PlainText()
    lines: list[str] = []
    previous = 0
    for cut in [*sorted(c for c in cuts if c <= len(data)), len(data)]:
        lines += split.feed(data[previous:cut])
        previous = cut
    assert (lines, split.flush()) == (expected, expected_rest)
