"""Key presses become the input an xterm-256color terminal would send."""

from __future__ import annotations

import pytest

from tui.core.term import bracketed, encode_key


@pytest.mark.parametrize(("key", "character", "expected"), [
    ("a", "a", "a"),
    ("A", "A", "A"),
    ("question_mark", "?", "?"),
    ("space", " ", " "),
    ("enter", "\r", "\r"),
    ("enter", None, "\r"),
    ("backspace", "\x7f", "\x7f"),
    ("tab", "\t", "\t"),
    ("shift+tab", None, "\x1b[Z"),
    ("escape", "\x1b", "\x1b"),
    ("ctrl+c", "\x03", "\x03"),
    ("ctrl+c", None, "\x03"),
    ("ctrl+d", None, "\x04"),
    ("ctrl+z", None, "\x1a"),
    ("ctrl+backslash", None, "\x1c"),
    ("up", None, "\x1b[A"),
    ("down", None, "\x1b[B"),
    ("right", None, "\x1b[C"),
    ("left", None, "\x1b[D"),
    ("home", None, "\x1b[H"),
    ("end", None, "\x1b[F"),
    ("pageup", None, "\x1b[5~"),
    ("pagedown", None, "\x1b[6~"),
    ("delete", None, "\x1b[3~"),
    ("insert", None, "\x1b[2~"),
    ("f1", None, "\x1bOP"),
    ("f5", None, "\x1b[15~"),
    ("f12", None, "\x1b[24~"),
    ("ctrl+up", None, "\x1b[1;5A"),
    ("shift+right", None, "\x1b[1;2C"),
    ("ctrl+pagedown", None, "\x1b[6;5~"),
    ("alt+b", None, "\x1bb"),
    ("alt+ctrl+c", None, "\x1b\x03"),
    ("é", "é", "é"),
])
def test_encode_key(key: str, character: str | None, expected: str) -> None:
    assert encode_key(key, character) == expected


def test_application_cursor_mode_changes_arrows_only() -> None:
    assert encode_key("up", None, app_cursor=True) == "\x1bOA"
    assert encode_key("home", None, app_cursor=True) == "\x1bOH"
    assert encode_key("pageup", None, app_cursor=True) == "\x1b[5~"
    assert encode_key("ctrl+up", None, app_cursor=True) == "\x1b[1;5A"


def test_unknown_keys_are_not_claimed() -> None:
    assert encode_key("ctrl+f13", None) is None
    assert encode_key("unknown_key_name", None) is None


def test_bracketed_paste() -> None:
    assert bracketed("ls\r") == "\x1b[200~ls\r\x1b[201~"
