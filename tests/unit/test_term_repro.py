"""The emulation gaps of issue 17, one test per reproduction, at 20x5 as in the issue.

Each expectation is what tmux 3.3 shows for the same bytes (checked with
``tests/support/tmux_screen.py``), except where tmux cannot say: the colour of erased
cells (``capture-pane`` does not report it; xterm's and pyte's background-colour erase is
the reference) and CHT (tmux ignores it; xterm moves by tab stops).
"""

from __future__ import annotations

import random
import unicodedata

import pytest
from rich.cells import cell_len
from rich.color import ColorType

from tui.core.term import Terminal


def fed(data: str, columns: int = 20, rows: int = 5) -> Terminal:
    term = Terminal(columns, rows, scrollback=100)
    term.feed(data)
    return term


def shown(term: Terminal) -> list[str]:
    total = term.lines_total
    return [term.line_text(i) for i in range(total - term.rows, total)]


def cells(term: Terminal, index: int) -> list[tuple[str, object]]:
    """One row as (character, background) per cell."""
    out: list[tuple[str, object]] = []
    for text, style in term.line(index):
        bg = style.bgcolor if style is not None else None
        out.extend((ch, bg) for ch in text)
    return out


# 1 ------------------------------------------------------------------ SU/SD on alt
def test_1_scroll_up_on_the_alternate_screen() -> None:
    term = fed("\x1b[?1049h\x1b[1;1Hrow1\x1b[2;1Hrow2\x1b[3;1Hrow3\x1b[4;1Hrow4"
               "\x1b[5;1Hrow5\x1b[2S")
    assert shown(term) == ["row3", "row4", "row5", "", ""]
    assert term.cursor == (4, 4)


def test_1_scroll_down_within_margins_on_the_alternate_screen() -> None:
    term = fed("\x1b[?1049h\x1b[1;1Hrow1\x1b[2;1Hrow2\x1b[3;1Hrow3\x1b[4;1Hrow4"
               "\x1b[5;1Hrow5\x1b[2;4r\x1b[1T")
    assert shown(term) == ["row1", "", "row2", "row3", "row5"]


# 2 ------------------------------------------------------- erase with a background
def test_2_erase_display_paints_every_cell_in_the_background_colour() -> None:
    term = fed("\x1b[44m\x1b[2J")
    total = term.lines_total
    for index in range(total - 5, total):
        row = cells(term, index)
        assert len(row) == 20
        assert {bg.number for _, bg in row if bg is not None} == {4}
        assert all(bg is not None for _, bg in row)


def test_2_erase_characters_paints_ten_white_cells() -> None:
    term = fed("ab\x1b[47m\x1b[10X")
    row = cells(term, term.cursor[0])
    assert [ch for ch, _ in row[:2]] == ["a", "b"]
    assert [bg.number if bg else None for _, bg in row[2:12]] == [7] * 10
    assert all(bg is None for _, bg in row[12:])


def test_2_erase_in_line_and_insert_take_only_the_background() -> None:
    term = fed("abc\x1b[1;4;31;42m\r\x1b[2@\x1b[3C\x1b[K")
    row = term.line(term.cursor[0])
    text = "".join(t for t, _ in row)
    assert text == "  a" + " " * 17
    for part, style in row:
        if part.strip() == "":
            assert style is not None and style.bgcolor is not None
            assert style.bgcolor.number == 2
            assert not style.underline and not style.bold and style.color is None


# 3 ----------------------------------------------------------- clear drops history
def test_3_erase_scrollback_drops_it() -> None:
    term = fed("".join(f"{i}\r\n" for i in range(1, 9)) + "\x1b[H\x1b[2J\x1b[3J")
    assert term.lines_total == 5
    assert shown(term) == [""] * 5
    assert term.cursor == (0, 0)
    assert term.first_line >= 8 - 5


# 4 --------------------------------------------- REP, HPA, s/u, CHT/CBT on alt
def test_4_repeat_on_the_alternate_screen() -> None:
    term = fed("\x1b[?1049hA\x1b[9b")
    assert shown(term)[0] == "AAAAAAAAAA"
    assert term.cursor == (0, 10)


def test_4_column_absolute_on_the_alternate_screen() -> None:
    term = fed("\x1b[?1049hA\x1b[10`B")
    assert shown(term)[0] == "A        B"


def test_4_save_and_restore_with_csi_s_u_on_the_alternate_screen() -> None:
    term = fed("\x1b[?1049h\x1b[2;3H\x1b[s\x1b[5;5H\x1b[uX")
    assert shown(term)[1] == "  X"
    assert term.cursor == (1, 3)


def test_4_tab_forward_and_back_on_the_alternate_screen() -> None:
    term = fed("\x1b[?1049hA\x1b[2IB\x1b[ZC")
    assert shown(term)[0] == "A" + " " * 15 + "C"
    assert term.cursor == (0, 17)


# 5 ----------------------------------------------------------- 47/1047 vs 1049
def test_5_leaving_1047_keeps_the_cursor_where_the_program_left_it() -> None:
    term = fed("abc\r\n\r\n\x1b[?1047h\x1b[HX\x1b[?1047lY")
    assert shown(term) == ["aYc", "", "", "", ""]
    assert term.cursor == (0, 2)


def test_5_leaving_47_too_but_1049_restores() -> None:
    assert shown(fed("abc\r\n\r\n\x1b[?47h\x1b[HX\x1b[?47lY"))[0] == "aYc"
    term = fed("abc\r\n\r\n\x1b[?1049h\x1b[HX\x1b[?1049lY")
    assert shown(term)[:3] == ["abc", "", "Y"]
    assert term.cursor == (2, 1)


# 6 -------------------------------------------------------------- main screen
def test_6_origin_mode_addresses_within_the_margins() -> None:
    term = fed("\x1b[3;5r\x1b[?6h\x1b[1;1HX")
    assert shown(term) == ["", "", "X", "", ""]
    assert term.cursor == (2, 1)
    term.feed("\x1b[9;1HY\x1b[6n")
    assert shown(term)[4] == "Y"
    assert term.take_replies() == "\x1b[3;2R"  # reported relative to the margin


def test_6_decaln_fills_the_screen_with_e() -> None:
    term = fed("x\x1b#8")
    assert shown(term) == ["E" * 20] * 5
    assert term.cursor == (0, 0)


def test_6_tab_stops_set_with_hts_cleared_with_tbc() -> None:
    assert shown(fed("\x1b[3g\x1b[5G\x1bH\x1b[12G\x1bH\r\tA\tB\tC"))[0] == \
        "    A      B       C"
    assert shown(fed("\x1b[9G\x1b[0g\r\tA"))[0] == " " * 16 + "A"


def test_6_insert_mode_shifts_the_rest_right() -> None:
    term = fed("abcdef\r\x1b[4hXY\x1b[4lZ")
    assert shown(term)[0] == "XYZbcdef"
    assert term.cursor == (0, 3)


def test_6_repeat_on_the_main_screen() -> None:
    term = fed("A\x1b[9b")
    assert shown(term)[0] == "AAAAAAAAAA"
    assert term.cursor == (0, 10)


def test_6_bare_lf_vt_ff_move_down_without_carriage_return() -> None:
    term = fed("abc\ndef\x0bgh\x0cij")
    assert shown(term) == ["abc", "   def", "      gh", "        ij", ""]
    assert term.cursor == (3, 10)


def test_6_line_feed_new_line_mode_returns_the_carriage() -> None:
    term = fed("\x1b[20h")  # LNM takes effect from the next piece of output
    term.feed("abc\ndef")
    assert shown(term)[:2] == ["abc", "def"]
    assert shown(fed("abc\r\ndef"))[:2] == ["abc", "def"]


def test_6_a_crlf_split_between_feeds_is_still_one_newline() -> None:
    term = Terminal(20, 5)
    term.feed("abc\r")
    term.feed("\ndef")
    assert shown(term)[:2] == ["abc", "def"]


def test_6_cursor_movement_inside_a_control_sequence() -> None:
    term = fed("A\x1b[2\bCB")
    assert shown(term)[0] == "A B"
    assert term.cursor == (0, 3)


# 7 ----------------------------------------------------- palette colours on alt
@pytest.mark.parametrize("screen", ["", "\x1b[?1049h"])
def test_7_palette_colours_stay_palette_colours(screen: str) -> None:
    term = fed(screen + "\x1b[38;5;1mR\x1b[38;5;9mB\x1b[38;5;100mC\x1b[48;5;4mD")
    runs = {text: style for text, style in term.line(0)}
    assert runs["R"].color.type is ColorType.STANDARD and runs["R"].color.number == 1
    assert runs["B"].color.type is ColorType.STANDARD and runs["B"].color.number == 9
    assert runs["C"].color.type is ColorType.EIGHT_BIT and runs["C"].color.number == 100
    assert runs["D"].bgcolor.type is ColorType.STANDARD and runs["D"].bgcolor.number == 4


# 9 ------------------------------------------------------------ binary output
_UNSAFE = {"Cc", "Cs", "Cn", "Zl", "Zp"}


def _safe(term: Terminal) -> None:
    for index in range(term.lines_total):
        text = term.line_text(index)
        assert cell_len(text) <= term.columns, (index, text)
        assert not {unicodedata.category(ch) for ch in text} & _UNSAFE, (index, text)
        assert not any(unicodedata.bidirectional(ch) in {"RLO", "LRO", "RLE", "LRE", "PDF",
                                                         "RLI", "LRI", "FSI", "PDI"}
                       for ch in text)
    row, column = term.cursor or (0, 0)
    assert 0 <= row < term.lines_total and 0 <= column < term.columns


def test_9_controls_invalid_and_format_characters_stay_inside_their_cells() -> None:
    term = fed("a\x01b\ufffdc\u200bd\u202ee\u2028f\U000e0080g\u05c8")
    assert shown(term)[0] == "ab\ufffdc\u200bd\ufffde\ufffdf\ufffdg\ufffd"
    _safe(term)


def test_9_emoji_sequences_are_measured_as_textual_measures_them() -> None:
    term = fed("\U0001f468\u200d\U0001f469|\u263a\ufe0f|\U0001f44d\U0001f3fd|")
    text = shown(term)[0]
    assert cell_len(text) == 2 + 2 + 1 + 1 + 1 + 2 + 1
    assert term.cursor == (0, cell_len(text))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_9_random_binary_never_draws_outside_the_pane(seed: int) -> None:
    import codecs

    data = random.Random(seed).randbytes(200_000)
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    term = Terminal(40, 12, scrollback=300)
    for start in range(0, len(data), 4096):
        term.feed(decoder.decode(data[start:start + 4096]))
        term.take_replies()
    _safe(term)
    term.feed("\x1b[?1049l\x1bc")  # leave whatever mode the noise set
    _safe(term)


def test_keys_change_for_main_lines_redrawn_in_a_feed_that_left_the_alt_screen() -> None:
    term = Terminal(20, 5)
    term.feed("one\r\n")
    term.feed("\x1b[Hzzz\x1b[?1049h")  # a view may cache line 0 as "zzz" under this key
    key = (term.line_text(0), term._main.version_of(0))
    term.feed("\x1b[?1049l\x1b[Htwo")  # starts on the alternate screen, redraws line 0
    assert term.line_text(0) == "two"
    assert (term.line_text(0), term.line_key(0)[1]) != ("two", key[1])


@pytest.mark.parametrize("screen", ["", "\x1b[?1049h"])
def test_2_rows_and_cells_that_scroll_or_shift_in_take_the_background(screen: str) -> None:
    term = fed(screen + "a\r\nb\r\nc\r\nd\r\ne\x1b[41m\x1b[2;1H\x1b[L\x1b[4;1H\x1b[M"
               "\x1b[1;1H\x1b[2P\x1b[5;1H\r\n")
    rows = [cells(term, i) for i in range(term.lines_total - 5, term.lines_total)]
    # a b c d e -> IL: a R b c d -> DL: a R b d R -> DCH: R' R b d R -> scroll: R b d R R
    for index in (0, 3, 4):  # inserted, pulled up at the bottom, scrolled in
        assert len(rows[index]) == 20
        assert {bg.number if bg else None for _, bg in rows[index]} == {1}
        assert "".join(ch for ch, _ in rows[index]).strip() == ""
    assert "".join(ch for ch, _ in rows[1]) == "b"


def test_6_insert_mode_splitting_a_wide_character_blanks_it_in_any_pieces() -> None:
    whole = fed("\x1b[4h\x1b(0日\bKr")
    single = Terminal(20, 5)
    for char in "\x1b[4h\x1b(0日\bKr":
        single.feed(char)
    assert shown(whole)[0] == shown(single)[0]
    assert shown(whole)[0].rstrip() == " K⎼"


def test_3_erase_scrollback_when_the_screen_moved_below_the_stored_lines() -> None:
    term = Terminal(20, 5, 30)
    term.feed("a\r\nb\x1b[2J\x1b[5;1H\r\n\r\n\x1b[3J")  # once raised IndexError
    assert term.lines_total == 5
    assert term.text() == ""
    assert term.cursor == (4, 0)


@pytest.mark.parametrize("autowrap", ["", "\x1b[?7l"])
def test_9_a_combining_mark_after_the_last_column_joins_it_in_any_pieces(autowrap: str) -> None:
    stream = autowrap + "x" * 19 + "e\u0301"
    whole = fed(stream)
    single = Terminal(20, 5)
    for char in stream:
        single.feed(char)
    assert shown(whole) == shown(single)
    assert shown(whole)[0] == "x" * 19 + "e\u0301"


def test_a_background_line_feed_scroll_on_an_unwritten_screen_fills_the_new_bottom_row() -> None:
    """Found by the chunking fuzz: with nothing stored yet, the row a line feed scrolled
    in with the pen's background landed one row too high when the piece came whole."""
    from tui.core.term.terminal import Terminal

    stream = "\x1b[48;5;4m" + "\r\n" * 6
    whole = Terminal(10, 6, scrollback=50)
    whole.feed(stream)
    single = Terminal(10, 6, scrollback=50)
    for char in stream:
        single.feed(char)
    for term in (whole, single):
        assert [bool(term.line(i)) for i in range(7)] == [False] * 6 + [True]
        assert term.cursor == (6, 0)
