"""The OSC 133 marker parser: markers found and removed, robust to any split, fast."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tui.core.fleet.osc133 import (
    MAX_MARKER,
    Marker,
    MarkerParser,
    Piece,
    integration_line,
    strip_markers,
)

D0 = "\x1b]133;D;0;hw=0\x07"
A = "\x1b]133;A\x07"
STREAM = ("\x1b[?2004huser@c-0:$ echo hi\r\n\x1b[?2004l\r\x1b]133;C;hw=0\x07hi\r\n"
          + D0 + A + "\x1b[1;32muser@c-0\x1b[0m:$ \x1b]0;title\x07" + "caf\u00e9 50%\r100%\r\n"
          + "\x1b]133;D;1;hw=0\x1b\\" + A + "$ ")
EXPECTED_TEXT = ("\x1b[?2004huser@c-0:$ echo hi\r\n\x1b[?2004l\rhi\r\n"
                 "\x1b[1;32muser@c-0\x1b[0m:$ \x1b]0;title\x07caf\u00e9 50%\r100%\r\n$ ")
EXPECTED_MARKERS = [Marker("C", ("hw=0",)), Marker("D", ("0", "hw=0")), Marker("A"),
                    Marker("D", ("1", "hw=0")), Marker("A")]


def run(chunks: list[str]) -> tuple[str, list[Marker]]:
    """Feed ``chunks`` in order; return the joined text and the markers."""
    parser = MarkerParser()
    pieces: list[Piece] = []
    for chunk in chunks:
        pieces += parser.feed(chunk)
    text = "".join(p for p in pieces if isinstance(p, str)) + parser.flush()
    return text, [p for p in pieces if isinstance(p, Marker)]


def test_markers_are_found_and_everything_else_passes_through() -> None:
    assert run([STREAM]) == (EXPECTED_TEXT, EXPECTED_MARKERS)


def test_pieces_keep_their_order() -> None:
    pieces = MarkerParser().feed("out\r\n" + D0 + A + "$ ")
    assert pieces == ["out\r\n", Marker("D", ("0", "hw=0")), Marker("A"), "$ "]


def test_every_split_into_two_reads_gives_the_same_result() -> None:
    for cut in range(len(STREAM) + 1):
        assert run([STREAM[:cut], STREAM[cut:]]) == (EXPECTED_TEXT, EXPECTED_MARKERS), cut


def test_one_character_per_read_gives_the_same_result() -> None:
    assert run(list(STREAM)) == (EXPECTED_TEXT, EXPECTED_MARKERS)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=len(STREAM)), max_size=12))
def test_any_split_gives_the_same_result(cuts: list[int]) -> None:
    bounds = [0, *sorted(cuts), len(STREAM)]
    chunks = [STREAM[a:b] for a, b in itertools.pairwise(bounds)]
    assert run(chunks) == (EXPECTED_TEXT, EXPECTED_MARKERS)


def test_text_without_escape_takes_the_fast_path_unchanged() -> None:
    chunk = "".join(f"{i}\r\n" for i in range(1000))
    pieces = MarkerParser().feed(chunk)
    assert len(pieces) == 1 and pieces[0] is chunk
    assert MarkerParser().feed("") == []


def test_an_incomplete_marker_is_held_back_until_its_terminator() -> None:
    parser = MarkerParser()
    assert parser.feed("out\x1b]133;D;") == ["out"]
    assert parser.pending == "\x1b]133;D;"
    assert parser.feed("7\x07$ ") == [Marker("D", ("7",)), "$ "]
    assert parser.pending == ""


def test_a_lone_escape_at_the_end_is_held_back_but_other_sequences_are_not() -> None:
    parser = MarkerParser()
    assert parser.feed("red\x1b") == ["red"]
    assert parser.feed("[31mX") == ["\x1b[31mX"]
    assert parser.feed("\x1b]0;title\x07") == ["\x1b]0;title\x07"]


def test_an_unterminated_marker_longer_than_the_limit_passes_through() -> None:
    junk = "\x1b]133;" + "x" * (MAX_MARKER + 10)
    assert run([junk[:100], junk[100:], "tail"]) == (junk + "tail", [])
    long_payload = "\x1b]133;" + "y" * (MAX_MARKER + 10) + "\x07"
    assert run([long_payload + A]) == (long_payload, [Marker("A")])


def test_the_stream_end_returns_held_text() -> None:
    parser = MarkerParser()
    assert parser.feed("a\x1b]13") == ["a"]
    assert parser.flush() == "\x1b]13"
    assert parser.flush() == ""


def test_marker_fields() -> None:
    assert Marker("D", ("130", "hw=2")).status == 130
    assert Marker("D", ("130", "hw=2")).option("hw") == "2"
    assert Marker("D", ()).status is None
    assert Marker("D", ("$?",)).status is None
    assert Marker("A").option("hw") is None
    assert Marker("hardway", ("ready", "bash", "0")).args[1] == "bash"


def test_strip_markers() -> None:
    assert strip_markers(STREAM) == EXPECTED_TEXT


def test_a_million_lines_parse_whole() -> None:
    """`seq 1 1000000` as a PTY delivers it (CR LF), in 32 KiB reads, with a few colours:
    nothing lost or held back (its speed is bench/ingest.py's to measure)."""
    text = "".join(f"{i}\r\n" for i in range(1, 1_000_001))
    chunks = [text[i:i + 32768] for i in range(0, len(text), 32768)]
    chunks[100] = "\x1b[1m" + chunks[100] + "\x1b[0m" + D0  # one chunk on the slow path
    parser = MarkerParser()
    size = 0
    for chunk in chunks:
        for piece in parser.feed(chunk):
            if isinstance(piece, str):
                size += len(piece)
    assert size + len(parser.flush()) == len(text) + len("\x1b[1m\x1b[0m")


@pytest.mark.parametrize("cut", [0, 1, 300, 1000, -1])
def test_a_shell_that_exits_at_once_says_its_words_without_the_setup_echo(cut: int) -> None:
    """A shell that exits at once (nologin, ForceCommand) races the echo of the setup
    line: its words may land in the middle of the echo, which must not be reported as what
    it said (the full suite saw the setup line's tail instead of the message)."""
    from tui.core.fleet.shell import without_echo

    setup = integration_line({"HOST_NAME": "controller-0"}).rstrip("\n")
    said = "This account is currently not available.\r\n"
    at = len(setup) if cut == -1 else cut
    text = setup[:at] + said + setup[at:]
    assert " ".join(without_echo(text, setup).split()) == said.strip()
    assert without_echo("nothing of it here", setup) == "nothing of it here"
