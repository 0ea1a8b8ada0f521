"""Terminal emulation for console panes: line mode, styles, split input, alt screen."""

from __future__ import annotations

import re
from itertools import pairwise

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rich.color import ColorType

from tui.core.term import Terminal


def screen(term: Terminal) -> list[str]:
    """The last ``rows`` lines, trailing blanks kept, as a user would see them."""
    total = term.lines_total
    return [term.line_text(i) for i in range(max(0, total - term.rows), total)]


def fed(*chunks: str, columns: int = 80, rows: int = 24, scrollback: int = 1000) -> Terminal:
    term = Terminal(columns, rows, scrollback)
    for chunk in chunks:
        term.feed(chunk)
    return term


# ------------------------------------------------------------- carriage return
def test_curl_progress_meter_ends_as_one_line() -> None:
    header = ("  % Total    % Received % Xferd  Average Speed   Time    Time     Time  Current\r\n"
              "                                 Dload  Upload   Total   Spent    Left  Speed\r\n")
    frames = ["\r  0     0    0     0    0     0      0      0 --:--:-- --:--:-- --:--:--     0",
              "\r 42 10.0M   42 4300k    0     0  8601k      0  0:00:01 --:--:--  0:00:01 8600k",
              "\r100 10.0M  100 10.0M    0     0  9800k      0  0:00:01  0:00:01 --:--:-- 9801k"]
    term = fed(header, *frames, "\r\n$ ")
    assert term.text().splitlines() == [
        "  % Total    % Received % Xferd  Average Speed   Time    Time     Time  Current",
        "                                 Dload  Upload   Total   Spent    Left  Speed",
        "100 10.0M  100 10.0M    0     0  9800k      0  0:00:01  0:00:01 --:--:-- 9801k",
        "$ ",
    ]
    assert term.cursor == (3, 2)


def test_shorter_update_after_cr_leaves_the_tail_unless_erased() -> None:
    assert fed("downloading 100 files\rdone").text() == "doneloading 100 files"
    assert fed("downloading 100 files\rdone\x1b[K").text() == "done"


def test_wget_style_bar_with_erase_in_line_and_split_crlf() -> None:
    term = fed("file.tar  10%[=>      ]\r", "file.tar  55%[====>   ]\x1b[K\r",
               "file.tar 100%[=======>]\x1b[K\r", "\n", "saved\r\n")
    assert term.text() == "file.tar 100%[=======>]\nsaved"


# ------------------------------------------------------------------- editing
def test_backspace_moves_left_and_readline_erase_sequence() -> None:
    assert fed("abc\b\bX").text() == "aXc"
    assert fed("$ lsx\b \b").text() == "$ ls "
    assert fed("$ lsx\b \b").cursor == (0, 4)
    assert fed("\b\bab").text() == "ab"  # cannot go left of column 0


def test_erase_in_line_modes() -> None:
    assert fed("hello world\x1b[6D\x1b[K").text() == "hello"
    assert fed("hello world\x1b[6D\x1b[1K").text() == "      world"
    assert fed("hello world\x1b[6D\x1b[2K!").text() == "     !"


def test_tabs_stop_every_eight_columns() -> None:
    assert fed("a\tb\tc").text() == "a       b       c"
    assert fed("12345678\tx").text() == "12345678        x"


def test_cursor_movement_within_the_screen() -> None:
    term = fed("one\r\ntwo\r\nthree", rows=5)
    term.feed("\x1b[2A\x1b[1GX\x1b[B\x1b[2CY")
    assert screen(term)[:3] == ["Xne", "twoY", "three"]
    term.feed("\x1b[1;1HZ\x1b[3;4f!")
    assert screen(term)[:3] == ["Zne", "twoY", "thr!e"]


def test_insert_and_delete_characters_and_lines() -> None:
    term = fed("abcdef\x1b[4G\x1b[2@XY", rows=4)
    assert term.line_text(0) == "abcXYdef"
    term.feed("\x1b[1G\x1b[3P")
    assert term.line_text(0) == "XYdef"
    term = fed("1\r\n2\r\n3\r\n4", rows=4)
    term.feed("\x1b[2;1H\x1b[L")
    assert screen(term) == ["1", "", "2", "3"]
    term.feed("\x1b[M\x1b[M")
    assert screen(term) == ["1", "3", "", ""]


def test_line_wider_than_screen_wraps_and_pending_wrap_cr_stays_on_the_line() -> None:
    term = fed("x" * 25, columns=10, rows=5)
    assert term.text() == "xxxxxxxxxx\nxxxxxxxxxx\nxxxxx"
    # readline at the right margin: the next character wraps, CR returns on the new row.
    term = fed("0123456789", columns=10, rows=5)
    assert term.cursor == (0, 9)
    term.feed(" \r")
    assert term.text() == "0123456789\n "
    assert term.cursor == (1, 0)


def test_clear_screen_keeps_old_output_in_scrollback() -> None:
    term = fed("old 1\r\nold 2\r\n$ clear\r\n", rows=4)
    term.feed("\x1b[H\x1b[2J$ ")
    assert screen(term) == ["$ ", "", "", ""]
    assert term.search("old 2") == [1]
    assert term.cursor == (term.lines_total - 4, 2)


def test_scroll_region_keeps_a_status_line_at_the_bottom() -> None:
    """apt's fancy progress: margins 1..rows-1, a status line drawn on the last row."""
    term = Terminal(30, 4, scrollback=100)
    term.feed("\x1b7\x1b[1;3r\x1b8")  # save, set margins rows 1-3, restore
    term.feed("\x1b7\x1b[4;1HProgress: [ 10%]\x1b8")
    for i in range(6):
        term.feed(f"Unpacking pkg{i}\r\n")
    assert screen(term) == ["Unpacking pkg4", "Unpacking pkg5", "", "Progress: [ 10%]"]
    assert term.search("Unpacking pkg0") == [0]


# ------------------------------------------------------------------- styles
def test_sgr_16_256_and_truecolour_segments() -> None:
    term = fed("\x1b[1;31mERR\x1b[0m ok \x1b[38;5;208morange\x1b[39m "
               "\x1b[48;2;10;20;30mbg\x1b[m\x1b[92mbright")
    runs = term.line(0)
    assert [text for text, _ in runs] == ["ERR", " ok ", "orange", " ", "bg", "bright"]
    err, plain, orange, _, bg, bright = (style for _, style in runs)
    assert err is not None and err.bold and err.color is not None
    assert err.color.number == 1 and err.color.type is ColorType.STANDARD
    assert plain is None
    assert orange is not None and orange.color is not None and orange.color.number == 208
    assert bg is not None and bg.bgcolor is not None and bg.bgcolor.triplet is not None
    assert tuple(bg.bgcolor.triplet) == (10, 20, 30) and bg.color is None
    assert bright is not None and bright.color is not None and bright.color.number == 10


def test_sgr_attributes_and_colon_forms() -> None:
    term = fed("\x1b[2;3;4;7mA\x1b[22;23;24;27mB\x1b[38:2::1:2:3mC\x1b[4:0;9mD")
    a, b, c, d = (style for _, style in term.line(0))
    assert a is not None and a.dim and a.italic and a.underline and a.reverse
    assert b is None
    assert c is not None and c.color is not None and c.color.triplet is not None
    assert tuple(c.color.triplet) == (1, 2, 3)
    assert d is not None and d.strike and not d.underline


def test_styled_text_overwritten_after_cr() -> None:
    term = fed("\x1b[32mgreen line\x1b[0m\r\x1b[31mRED\x1b[0m")
    assert [(t, s.color.number if s and s.color else None) for t, s in term.line(0)] == [
        ("RED", 1), ("en line", 2)]


# --------------------------------------------------------------- split input
SAMPLE = ("\x1b]0;ctl-0: ~\x07\x1b[01;32mroot@controller-0\x1b[00m:\x1b[01;34m~\x1b[00m# "
          "etcdctl member list\r\n8e9e05c52164694d, started, controller-0, "
          "https://10.240.0.10:2380\r\n\x1b[?2004h  3%\r 57%\r100%\x1b[K\r\n"
          "héllo wörld ✓ 日本語\r\n\x1b[38;2;255;128;0mtruecolour\x1b[0m\tend\r\n$ ")


def _snapshot(term: Terminal) -> tuple[object, ...]:
    lines = tuple(tuple(term.line(i)) for i in range(term.lines_total))
    return (lines, term.cursor, term.title, term.bracketed_paste)


def test_every_single_split_point_gives_the_same_result() -> None:
    whole = _snapshot(fed(SAMPLE))
    for cut in range(1, len(SAMPLE)):
        assert _snapshot(fed(SAMPLE[:cut], SAMPLE[cut:])) == whole, cut


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=len(SAMPLE) - 1), max_size=12))
def test_random_chunking_gives_the_same_result(cuts: list[int]) -> None:
    points = [0, *sorted(set(cuts)), len(SAMPLE)]
    chunks = [SAMPLE[a:b] for a, b in pairwise(points)]
    assert _snapshot(fed(*chunks)) == _snapshot(fed(SAMPLE))


def test_split_sgr_and_osc_title() -> None:
    term = fed("\x1b[3", "1mred\x1b]2;my ", "title\x1b", "\\ok")
    assert term.title == "my title"
    assert [(t, s is not None) for t, s in term.line(0)] == [("redok", True)]


# --------------------------------------------------------------------- UTF-8
def test_utf8_and_wide_characters_take_their_cells() -> None:
    term = fed("héllo ✓ 日本語")
    assert term.text() == "héllo ✓ 日本語"
    assert term.cursor == (0, 14)
    term.feed("\r日本\rab")
    assert term.line_text(0) == "ab本o ✓ 日本語"  # 日本 covered h, é, l, l
    term = fed("日本語日本語", columns=7, rows=3)  # a wide char never straddles the margin
    assert term.text() == "日本語\n日本語"


def test_line_drawing_charset_draws_boxes() -> None:
    assert fed("\x1b(0lqqk\x1b(B x").text() == "┌──┐ x"
    assert fed("\x1b)0a\x0eqq\x0fqq").text() == "a──qq"


# ----------------------------------------------------------------- scrollback
def test_scrollback_is_capped_and_keeps_the_newest_lines() -> None:
    term = Terminal(80, 10, scrollback=100)
    text = "".join(f"{i}\r\n" for i in range(1, 1001))
    for start in range(0, len(text), 777):
        term.feed(text[start:start + 777])
    assert term.lines_total == 110
    assert term.first_line == 1000 - 109
    assert term.line_text(0) == "892"
    assert term.line_text(108) == "1000"
    assert term.line_text(109) == ""
    assert term.cursor == (109, 0)


def test_memory_stays_bounded_by_the_cap() -> None:
    term = Terminal(80, 24, scrollback=500)
    chunk = "".join(f"line {i} \x1b[32mok\x1b[0m\r\n" for i in range(1000))
    for _ in range(20):
        term.feed(chunk)
    assert term.lines_total == 524
    assert len(term._main.lines) <= 524
    assert len(term._main._versions) <= 8 * 24 + 256 + 2000


def test_search_literal_regex_and_case() -> None:
    term = fed("alpha\r\nBeta\r\ngamma beta\r\n")
    assert term.search("beta") == [2]
    assert term.search("beta", ignore_case=True) == [1, 2]
    assert term.search(re.compile(r"^(alpha|gamma)")) == [0, 2]
    assert term.search("") == []


# --------------------------------------------------------------- alt screen
def test_alt_screen_enter_draw_leave_restores_previous_lines() -> None:
    term = fed("$ ls\r\nfile-a  file-b\r\n$ vim notes\r\n", columns=20, rows=5)
    before = term.text()
    cursor_before = term.cursor
    term.feed("\x1b[?1049h\x1b[22;0;0t\x1b[1;4r\x1b[H\x1b[2Jhello vim\r\n~\r\n~")
    term.feed("\x1b[5;1H\"notes\" 1L, 10B\x1b[1;6H")
    assert term.alt_screen
    assert term.lines_total == 5
    assert term.text() == 'hello vim\n~\n~\n\n"notes" 1L, 10B'
    assert term.cursor == (0, 5)
    term.feed("\x1b[?1049l\x1b[23;0;0t")
    assert not term.alt_screen
    assert term.text() == before
    assert term.cursor == cursor_before


def test_alt_screen_scroll_region_and_insert_lines_via_pyte() -> None:
    term = fed("\x1b[?1049h", columns=10, rows=4)
    term.feed("\x1b[H1\r\n2\r\n3\r\n4\x1b[2;3r\x1b[2;1H\x1b[L")
    assert term.text() == "1\n\n2\n4"
    term.feed("\x1b[?1049l")
    assert term.text() == ""


def test_alt_screen_styles_and_cursor_visibility() -> None:
    term = fed("\x1b[?1049h\x1b[?25l\x1b[7m top \x1b[0m load", columns=20, rows=3)
    runs = term.line(0)
    assert runs[0][0] == " top " and runs[0][1] is not None and runs[0][1].reverse
    assert runs[1] == (" load", None)
    assert term.cursor is None
    term.feed("\x1b[?25h\x1b[?1049l")
    assert term.cursor == (0, 0)


# ------------------------------------------------------------ modes, replies
def test_modes_title_and_unknown_sequences_are_swallowed() -> None:
    term = fed("\x1b[?1h\x1b=\x1b[?2004h\x1b[>4;1m\x1b]133;A\x07\x1bP+q544e\x1b\\"
               "\x1b[?1234h\x1b]0;title\x07visible\x1b[5 q\x1b_apc\x1b\\")
    assert term.text() == "visible"
    assert term.app_cursor_keys and term.bracketed_paste and term.title == "title"
    term.feed("\x1b[?1l\x1b[?2004l\x07")
    assert not term.app_cursor_keys and not term.bracketed_paste and term.bells == 1


def test_cursor_position_and_device_attribute_replies() -> None:
    term = fed("ab\r\ncd\x1b[6n\x1b[c")
    assert term.take_replies() == "\x1b[2;3R\x1b[?1;2c"
    assert term.take_replies() == ""


def test_malformed_escape_does_not_eat_text() -> None:
    assert fed("a\x1b[12\x01b").text() == "a"  # the control runs; REP has nothing to repeat
    assert fed("a\x1b[1\x1b[2Cb").text() == "a  b"  # ESC abandons the first CSI
    assert fed("x\x1b[4\x18Cy").text() == "xCy"  # CAN cancels it
    assert fed("a\x1b[1\x80b").text() == "a[1b"  # malformed: shown, C1 ignored
    assert fed("x\x1b\x1b[31my").text() == "xy"


# ---------------------------------------------------------------- versioning
def test_line_keys_change_only_for_changed_lines() -> None:
    term = fed("one\r\ntwo\r\n", rows=5)
    keys = [term.line_key(i) for i in range(3)]
    version = term.version
    term.feed("three")
    assert term.version > version
    assert [term.line_key(i) for i in range(2)] == keys[:2]
    assert term.line_key(2) != keys[2]
    term.feed("\x1b[2;1Htwo!")
    assert term.line_key(0) == keys[0]
    assert term.line_key(1) != keys[1]


def test_keys_never_repeat_for_different_content_after_erase_and_redraw() -> None:
    term = Terminal(20, 4, 50)
    seen: dict[object, str] = {}
    for frame in range(30):
        term.feed(f"\x1b[H\x1b[J{frame}\r\n{'x' * (frame % 5)}")
        for i in range(term.lines_total):
            key, text = term.line_key(i), term.line_text(i)
            assert seen.setdefault(key, text) == text


# -------------------------------------------------------------------- resize
def test_resize_keeps_the_cursor_line_and_resizes_the_alt_screen() -> None:
    term = fed("".join(f"{i}\r\n" for i in range(10)) + "$ ", columns=20, rows=5)
    term.resize(30, 3)
    assert (term.columns, term.rows) == (30, 3)
    assert screen(term) == ["8", "9", "$ "]
    term.resize(30, 6)
    assert screen(term) == ["5", "6", "7", "8", "9", "$ "]
    term.feed("\x1b[H\x1b[2J$ ")  # after clear, growing adds blank rows below the prompt
    term.resize(30, 8)
    assert screen(term) == ["$ ", "", "", "", "", "", "", ""]
    assert term.cursor == (term.lines_total - 8, 2)
    term.feed("\x1b[?1049h")
    term.resize(12, 4)
    term.feed("\x1b[4;12HZ")
    assert term.text() == "\n\n\n           Z"


@pytest.mark.parametrize("chunk", [1, 3, 4096, 65536])
def test_fast_path_and_general_path_agree_with_an_independent_wrap(chunk: int) -> None:
    text = "".join(f"{i} {'w' * (i % 97)}\r\n" for i in range(400)) + "tail"
    expected: list[str] = []
    for line in text.split("\r\n"):
        expected.extend(line[i:i + 40] for i in range(0, max(len(line), 1), 40))
    mixed = text.replace("7 w", "7 \x1b[1mw\x1b[0m")  # takes the styled/general paths
    for source in (text, mixed):
        term = Terminal(40, 10, 5000)
        for start in range(0, len(source), chunk):
            term.feed(source[start:start + chunk])
        assert term.text().split("\n") == expected
        assert term.cursor == (len(expected) - 1, 4)


@pytest.mark.parametrize("width", [7, 80])
def test_a_flood_in_one_piece_keeps_what_small_pieces_keep(width: int) -> None:
    """More lines in one feed than the buffer holds: the head is counted, not stored, and
    the result is what feeding the same output in small pieces gives."""
    output = "partial " + "".join(f"{i} bottles\r\n" for i in range(1, 30_001)) + "$ "
    whole, pieces = Terminal(width, 24, scrollback=1000), Terminal(width, 24, scrollback=1000)
    whole.feed(output)
    for start in range(0, len(output), 997):
        pieces.feed(output[start:start + 997])
    assert whole.text() == pieces.text()
    assert whole.lines_total == pieces.lines_total == 1024
    assert whole.cursor == pieces.cursor
    if width == 80:  # no line wraps: the numbering matches too
        assert whole.first_line == pieces.first_line == 30_001 - 1024
    whole.feed("echo next\r\nnext\r\n$ ")
    pieces.feed("echo next\r\nnext\r\n$ ")
    assert whole.text() == pieces.text()
    assert whole.text().rstrip().endswith("30000 b\nottles\n$ echo \nnext\nnext\n$" if width == 7
                                 else "30000 bottles\n$ echo next\nnext\n$")


@pytest.mark.parametrize("where", ["head", "tail", "none"])
def test_a_skipped_flood_keeps_the_pen_and_what_is_shown(
        where: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A colour change in the part that scrolls out must still apply to what follows; a
    head without one may be skipped.  Either way the result equals feeding in pieces."""
    lines = [f"{i} {'x' * (i % 50)}\r\n" for i in range(60_000)]
    if where == "head":
        lines[100] = "\x1b[31mred from here\r\n"
    elif where == "tail":
        lines[-5] = "\x1b[1;32mgreen tail\x1b[0m\r\n"
    output = "".join(lines) + "\t$ \x08"
    whole, pieces = Terminal(80, 24, scrollback=2000), Terminal(80, 24, scrollback=2000)
    skipped: list[int] = []
    original = type(whole._main).scroll_out

    def scroll_out(self: object, count: int) -> None:
        skipped.append(count)
        original(self, count)  # type: ignore[arg-type]

    monkeypatch.setattr(type(whole._main), "scroll_out", scroll_out)
    whole.feed(output)
    assert bool(skipped) == (where != "head")  # an escape in the head: no skipping
    for start in range(0, len(output), 4093):
        pieces.feed(output[start:start + 4093])
    assert whole.text() == pieces.text()
    assert [whole.line(i) for i in range(whole.lines_total)] == [
        pieces.line(i) for i in range(pieces.lines_total)]
    assert whole.cursor == pieces.cursor
    whole.feed("after\r\n")
    pieces.feed("after\r\n")
    assert whole.line(whole.lines_total - 2) == pieces.line(pieces.lines_total - 2)
