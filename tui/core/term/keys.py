"""Key presses to the bytes an xterm-256color terminal sends to the remote program.

Key names are Textual's (``"enter"``, ``"ctrl+c"``, ``"shift+up"``, ``"f5"``), but
nothing here imports Textual.
"""

from __future__ import annotations

_PLAIN = {
    "enter": "\r",
    "tab": "\t",
    "shift+tab": "\x1b[Z",
    "backspace": "\x7f",
    "ctrl+backspace": "\x08",
    "escape": "\x1b",
    "space": " ",
    "ctrl+space": "\x00",
    "ctrl+at": "\x00",
    "ctrl+@": "\x00",
}

# CSI final letter for cursor-like keys: ESC [ X normally, ESC O X in DECCKM mode
# (arrows only, as xterm does for Home/End too).
_LETTER = {"up": "A", "down": "B", "right": "C", "left": "D", "home": "H", "end": "F"}

# ESC [ n ~ keys.
_TILDE = {"insert": 2, "delete": 3, "pageup": 5, "pagedown": 6, "f5": 15, "f6": 17,
          "f7": 18, "f8": 19, "f9": 20, "f10": 21, "f11": 23, "f12": 24}

_SS3 = {"f1": "P", "f2": "Q", "f3": "R", "f4": "S"}

_CTRL_PUNCT = {"[": "\x1b", "left_square_bracket": "\x1b", "\\": "\x1c", "backslash": "\x1c",
               "]": "\x1d", "right_square_bracket": "\x1d", "^": "\x1e",
               "circumflex_accent": "\x1e", "_": "\x1f", "underscore": "\x1f",
               "?": "\x7f", "question_mark": "\x7f"}

_MODIFIER_BITS = {"shift": 1, "alt": 2, "meta": 2, "ctrl": 4}


def encode_key(key: str, character: str | None = None, *, app_cursor: bool = False) -> str | None:
    """The input string a terminal sends for one key press, or ``None`` if unknown.

    Args:
        key: Textual key name, modifiers first (``"ctrl+shift+up"``).
        character: the character the key produced, if any.
        app_cursor: DECCKM is on (the program asked for application cursor keys).
    """
    if key in _PLAIN:
        return _PLAIN[key]
    *modifiers, base = key.split("+")
    bits = sum(_MODIFIER_BITS.get(m, 0) for m in modifiers)
    if base in _LETTER:
        letter = _LETTER[base]
        if bits:
            return f"\x1b[1;{bits + 1}{letter}"
        return f"\x1bO{letter}" if app_cursor else f"\x1b[{letter}"
    if base in _TILDE:
        number = _TILDE[base]
        return f"\x1b[{number};{bits + 1}~" if bits else f"\x1b[{number}~"
    if base in _SS3:
        return f"\x1b[1;{bits + 1}{_SS3[base]}" if bits else f"\x1bO{_SS3[base]}"
    if not modifiers:
        if character and character.isprintable():
            return character
        if len(key) == 1 and key.isprintable():
            return key
        if character and len(character) == 1 and ord(character) < 32:
            return character
        return None
    if modifiers == ["shift"]:
        if character and character.isprintable():
            return character
        return base.upper() if len(base) == 1 else None
    if "alt" in modifiers or "meta" in modifiers:
        rest = [m for m in modifiers if m not in ("alt", "meta")]
        inner = encode_key("+".join([*rest, base]), None, app_cursor=app_cursor)
        return None if inner is None else "\x1b" + inner
    if "ctrl" in modifiers:
        if len(base) == 1 and base.isalpha() and base.isascii():
            return chr(ord(base.lower()) - 96)
        if base in _CTRL_PUNCT:
            return _CTRL_PUNCT[base]
        if base in ("2", "space", "at", "@"):
            return "\x00"
    if character and len(character) == 1 and ord(character) < 32:
        return character
    return None


def bracketed(text: str) -> str:
    """Wrap pasted text in bracketed-paste markers (``CSI 200~`` ... ``CSI 201~``)."""
    return f"\x1b[200~{text}\x1b[201~"
