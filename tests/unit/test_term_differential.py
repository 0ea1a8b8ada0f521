"""Differential test: a pane's ``Terminal`` against tmux, screen for screen.

Real programs recorded under ``script`` at 80x24 (``tests/data/term/*.bin``, made by
``tests/data/term/record.py``: vim, less, man, top, htop, whiptail, dialog, a dialog
gauge, bash line editing, an apt-style progress bar, tmux inside the pane, git log in
less) and synthetic streams are fed to both; recordings are compared a third and two
thirds of the way through as well as at the end.  Text, cursor, attributes and
scrollback length must match (see ``tests/support/term_compare.py`` for what tmux can
report), and cutting the stream into pieces of 1 byte, 7 bytes or 4 KiB must not change
what the Terminal shows.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.term_compare import Screen, differences, terminal_screen, tmux_screen
from tests.support.tmux_screen import TmuxReference, tmux_available

DATA = Path(__file__).resolve().parents[1] / "data" / "term"
RECORDINGS = sorted(path.stem for path in DATA.glob("*.bin"))
CHUNKS = (1, 7, 4096)

_LOG = "".join(f"\x1b[2m08:15:{i % 60:02d}\x1b[0m \x1b[1;32mINFO\x1b[0m etcd: index {i}\r\n"
               for i in range(60))

# name: (bytes, columns, rows)
SYNTHETIC: dict[str, tuple[bytes, int, int]] = {name: (data.encode(), columns, rows) for
                                                  name, data, columns, rows in [
    ("alt scroll up", "\x1b[?1049h\x1b[1;1Hrow1\x1b[2;1Hrow2\x1b[3;1Hrow3\x1b[4;1Hrow4"
                      "\x1b[5;1Hrow5\x1b[2S", 20, 5),
    ("alt scroll down in region", "\x1b[?1049h\x1b[1;1Hrow1\x1b[2;1Hrow2\x1b[3;1Hrow3"
                                  "\x1b[4;1Hrow4\x1b[5;1Hrow5\x1b[2;4r\x1b[1T", 20, 5),
    ("main scroll up and down", "a\r\nb\r\nc\r\nd\r\ne\x1b[2S\x1b[1T", 20, 5),
    ("erase with background", "ab\x1b[47m\x1b[10X\x1b[0mZ\r\n\x1b[44mxy\x1b[K\x1b[0m", 20, 5),
    ("clear keeps then drops scrollback", "".join(f"{i}\r\n" for i in range(1, 9))
     + "\x1b[H\x1b[2J\x1b[3J", 20, 5),
    ("clear pushes the used rows", "one\r\ntwo\r\n\x1b[H\x1b[2J", 20, 5),
    ("alt repeat", "\x1b[?1049hA\x1b[9b", 20, 5),
    ("alt column absolute", "\x1b[?1049hA\x1b[10`B", 20, 5),
    ("alt save restore", "\x1b[?1049h\x1b[2;3H\x1b[s\x1b[5;5H\x1b[uX", 20, 5),
    ("1047 keeps the cursor", "abc\r\n\r\n\x1b[?1047h\x1b[HX\x1b[?1047lY", 20, 5),
    ("1049 restores the cursor", "abc\r\n\r\n\x1b[?1049h\x1b[HX\x1b[?1049lY", 20, 5),
    ("origin mode", "\x1b[3;5r\x1b[?6h\x1b[1;1HX\x1b[9;1HY", 20, 5),
    ("decaln", "x\x1b#8", 20, 5),
    ("tab stops", "\x1b[3g\x1b[5G\x1bH\x1b[12G\x1bH\r\tA\tB\tC", 20, 5),
    ("insert mode", "abcdef\r\x1b[4hXY\x1b[4lZ", 20, 5),
    ("repeat", "A\x1b[9b", 20, 5),
    ("bare lf vt ff", "abc\ndef\x0bgh\x0cij", 20, 5),
    ("movement inside csi", "A\x1b[2\bCB", 20, 5),
    ("palette on alt", "\x1b[?1049h\x1b[38;5;1mR\x1b[38;5;9mB\x1b[38;5;100mC"
                       "\x1b[48;2;10;20;30mD", 20, 5),
    ("attributes", "\x1b[1mb\x1b[2md\x1b[22;3mi\x1b[23;4mu\x1b[24;7mr\x1b[27;9ms\x1b[m"
                   "\x1b[91;104mx\x1b[0m", 20, 5),
    ("wrap and pending wrap", "0123456789" * 3 + "\r\n" + "x" * 20 + "\rY", 20, 5),
    ("wide at the margin", "abcdefghijklmnopqrs日本語e\u0301", 20, 5),
    ("no autowrap", "\x1b[?7l" + "0123456789" * 3 + "\x1b[?7h", 20, 5),
    ("region index reverse", "1\r\n2\r\n3\r\n4\r\n5\x1b[2;4r\x1b[4;1H\n\nX\x1b[2;1H\x1bM\x1bMY",
     20, 5),
    ("insert delete lines", "1\r\n2\r\n3\r\n4\r\n5\x1b[2;1H\x1b[L\x1b[4;1H\x1b[2M", 20, 5),
    ("insert delete chars", "abcdefghij\r\x1b[3C\x1b[2@\x1b[6C\x1b[3P", 20, 5),
    ("erase in line and display", "aaaaaaaaaa\r\nbbbbbbbbbb\r\ncccccccccc\x1b[2;5H\x1b[1K"
                                  "\x1b[3;3H\x1b[0J\x1b[1;4H\x1b[1J", 20, 5),
    ("save restore cursor", "\x1b7abc\x1b[3;3Hxyz\x1b8Q", 20, 5),
    ("line drawing", "\x1b(0lqqk\r\nx  x\r\nmqqj\x1b(B ok", 20, 5),
    ("cursor clamps", "\x1b[99;99HX\x1b[99AY\x1b[99DZ", 20, 5),
    ("flood scrolls into history", "".join(f"line {i}\r\n" for i in range(30)), 20, 5),
    ("coloured log flood", _LOG, 80, 24),
    ("progress bar", "".join(f"\r{p:3d}% [{'#' * (p // 10):<10}]" for p in range(0, 101, 7))
     + "\r\n", 40, 5),
    ("cr lf split and tabs", "a\tb\tc\r\n\tx", 20, 5),
]}


TMUX_KEEPS_REGION_LINES = {"region index reverse"}
"""Streams whose scrollback length tmux alone counts differently: it moves the top line
of a scroll region that does not start at the top of the screen into its history, where
xterm (and this Terminal) drop it.  Text, cursor and attributes are still compared."""


@pytest.fixture(scope="module")
def tmux() -> Iterator[TmuxReference]:
    if not tmux_available():
        pytest.skip("tmux is not installed (scripts/install-test-deps.sh installs it)")
    with TmuxReference() as reference:
        yield reference


def _case(name: str) -> tuple[bytes, int, int]:
    if name in SYNTHETIC:
        return SYNTHETIC[name]
    return (DATA / f"{name}.bin").read_bytes(), 80, 24


def _cuts(data: bytes) -> list[int]:
    """Where a recording is compared: a third and two thirds of the way (moved on to an
    ASCII byte, so no UTF-8 sequence is cut) and at its end; most programs leave the
    alternate screen before the end."""
    cuts = {len(data)}
    for third in (1, 2):
        cut = len(data) * third // 3
        while cut < len(data) and data[cut] >= 0x80:
            cut += 1
        cuts.add(cut)
    return sorted(cuts)


def _compare(tmux: TmuxReference, name: str) -> None:
    data, columns, rows = _case(name)
    if name in SYNTHETIC:
        _compare_stream(tmux, name, data, columns, rows)
        return
    for cut in _cuts(data):
        _compare_stream(tmux, f"{name}[:{cut}]", data[:cut], columns, rows)


def _compare_stream(tmux: TmuxReference, name: str, data: bytes, columns: int,
                    rows: int) -> None:
    screens: dict[int, Screen] = {chunk: terminal_screen(data, columns, rows, chunk)
                                  for chunk in CHUNKS}
    for chunk in CHUNKS[:-1]:
        assert screens[chunk] == screens[CHUNKS[-1]], f"{name}: {chunk}-byte pieces differ"
    reference = tmux_screen(tmux.capture(data, columns, rows), columns)
    assert differences(screens[CHUNKS[-1]], reference,
                       history=name not in TMUX_KEEPS_REGION_LINES) == [], name


def test_recordings_are_there_and_small() -> None:
    assert {"vim", "less", "htop", "top", "whiptail", "dialog", "man", "bash",
            "apt_progress", "tmux_nested", "git_log"} <= set(RECORDINGS)
    assert all((DATA / f"{name}.bin").stat().st_size < 16 * 1024 for name in RECORDINGS)


@pytest.mark.parametrize("name", RECORDINGS)
def test_real_program_matches_tmux(tmux: TmuxReference, name: str) -> None:
    _compare(tmux, name)


@pytest.mark.parametrize("name", sorted(SYNTHETIC))
def test_synthetic_stream_matches_tmux(tmux: TmuxReference, name: str) -> None:
    _compare(tmux, name)


def test_the_comparison_sees_a_difference(tmux: TmuxReference) -> None:
    """The comparison can fail: a stream and a slightly different one do not match."""
    data, columns, rows = SYNTHETIC["attributes"]
    ours = terminal_screen(data.replace(b"\x1b[91;", b"\x1b[92;"), columns, rows, 4096)
    reference = tmux_screen(tmux.capture(data, columns, rows), columns)
    assert any("attributes" in line for line in differences(ours, reference))
    moved = terminal_screen(data + b"\x1b[2;2H", columns, rows, 4096)
    assert any("cursor" in line for line in differences(moved, reference))


_NOISE = [b"\x1b[", b"\x1b", b"\r\n", b"\n", b"\r", b"\x08", b"\t", b";", b"1", b"2", b"m",
          b"H", b"J", b"K", b"?1049h", b"?1049l", b"A", b"x", "日".encode(), b"\xff",
          b"\x1b]0;t\x07", b"\x1b(0", b"\x1b(B", b"S", b"T", b"b", b"4h", b"r", b"@", b"P",
          b"L", b"M", b"3g", b"\x1bH", b"\x1b#8", b"41m", b"0m", b"\x1b7", b"\x1b8"]
_MORE_NOISE = [b"\x1b[41m", b"\x1b[0m", b"\x1b[1;32m", b"\x1b[m", b"hello world ", b"\r\n",
               b"\x1b[K", b"\x1b[2J", b"\x1b[3J", b"\x1b[5;1H", b"\x1b[2;4r", b"\x1b[r",
               b"\x1b[?6h", b"\x1b[?6l", b"\x1b[?7l", b"\x1b[?7h", b"\x1b[3b", b"\x1b[2X",
               b"\x1b[2@", b"\x1b[4l", b"e\xcc\x81", b"\xf0\x9f\x91\x8d", b"\x1b[?47h",
               b"\x1b[?1047l"] * 2


@pytest.mark.parametrize("seed", range(20, 30))
def test_escape_noise_shows_the_same_in_any_pieces(seed: int) -> None:
    """Fragments of sequences, controls inside them, CR LF cut anywhere: 1-byte, 7-byte
    and 4 KiB pieces give the same screen (no tmux needed for this one)."""
    import random

    rnd = random.Random(seed)
    data = b"".join(rnd.choice(_NOISE) for _ in range(3000))
    screens = [terminal_screen(data, 20, 5, chunk) for chunk in CHUNKS]
    assert screens[0] == screens[1] == screens[2]
    more = b"".join(rnd.choice(_NOISE + _MORE_NOISE) for _ in range(600))
    if seed == 20:  # found by this fuzz: the scrollback erased below the stored lines
        more = b"a\r\nb\x1b[2J\x1b[5;1H\r\n\r\n\x1b[3J" + more
    screens = [terminal_screen(more, 20, 5, chunk, scrollback=30) for chunk in CHUNKS]
    assert screens[0] == screens[1] == screens[2]
