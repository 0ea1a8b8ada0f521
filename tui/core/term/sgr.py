"""SGR (Select Graphic Rendition) state and its translation to Rich styles.

A terminal's "pen" is a small immutable tuple ``(fg, bg, flags)``; applying an
``ESC [ ... m`` parameter string yields a new pen.  Pens map to cached
:class:`rich.style.Style` objects (``None`` for the default pen) so a line is
stored as ``(text, style)`` runs without allocating a style per character.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from rich.color import Color
from rich.style import Style

Colour = int | tuple[int, int, int] | None
"""A palette index 0-255, a true-colour ``(r, g, b)``, or ``None`` for the default."""

Pen = tuple[Colour, Colour, int]
"""``(foreground, background, attribute flags)``."""

BOLD = 1
DIM = 2
ITALIC = 4
UNDERLINE = 8
BLINK = 16
REVERSE = 32
CONCEAL = 64
STRIKE = 128
OVERLINE = 256

DEFAULT_PEN: Pen = (None, None, 0)

_SET_FLAG = {1: BOLD, 2: DIM, 3: ITALIC, 4: UNDERLINE, 5: BLINK, 6: BLINK, 7: REVERSE,
             8: CONCEAL, 9: STRIKE, 21: UNDERLINE, 53: OVERLINE}
_CLEAR_FLAG = {22: BOLD | DIM, 23: ITALIC, 24: UNDERLINE, 25: BLINK, 27: REVERSE,
               28: CONCEAL, 29: STRIKE, 55: OVERLINE}


def _extended_colour(codes: list[int], i: int) -> tuple[Colour, int]:
    """Parse ``5;n`` or ``2;r;g;b`` after a 38/48/58 code at ``codes[i]``.

    Returns:
        The colour (``None`` if malformed) and the index of the next unread code.
    """
    if i + 1 < len(codes) and codes[i + 1] == 5 and i + 2 < len(codes):
        return max(0, min(255, codes[i + 2])), i + 3
    if i + 1 < len(codes) and codes[i + 1] == 2 and i + 4 < len(codes):
        r, g, b = (max(0, min(255, c)) for c in codes[i + 2:i + 5])
        return (r, g, b), i + 5
    return None, len(codes)


def _colon_colour(sub: list[str]) -> Colour:
    """Parse the ITU colon form ``38:5:n``, ``38:2:r:g:b`` or ``38:2:cs:r:g:b``."""
    nums = [int(s) if s.isdigit() else 0 for s in sub]
    if len(nums) >= 3 and nums[1] == 5:
        return max(0, min(255, nums[2]))
    if len(nums) >= 5 and nums[1] == 2:
        rgb = nums[-3:]
        return (max(0, min(255, rgb[0])), max(0, min(255, rgb[1])), max(0, min(255, rgb[2])))
    return None


@lru_cache(maxsize=4096)
def apply_sgr(pen: Pen, params: str) -> Pen:
    """Return the pen after ``ESC [ params m``; unknown codes are ignored.

    Args:
        pen: the current pen.
        params: the parameter string between ``ESC [`` and ``m`` (may be empty).
    """
    if params in ("", "0"):
        return DEFAULT_PEN
    fg, bg, flags = pen
    if ":" in params:
        parts = params.split(";")
        codes: list[int] = []
        for part in parts:
            if ":" in part:
                sub = part.split(":")
                head = int(sub[0]) if sub[0].isdigit() else 0
                if head == 38:
                    fg = _colon_colour(sub)
                elif head == 48:
                    bg = _colon_colour(sub)
                elif head == 4:
                    style = int(sub[1]) if len(sub) > 1 and sub[1].isdigit() else 1
                    flags = flags | UNDERLINE if style else flags & ~UNDERLINE
                continue
            codes.append(int(part) if part.isdigit() else 0)
    else:
        codes = [int(part) if part.isdigit() else 0 for part in params.split(";")]
    i = 0
    while i < len(codes):
        code = codes[i]
        i += 1
        if code == 0:
            fg, bg, flags = DEFAULT_PEN
        elif 30 <= code <= 37:
            fg = code - 30
        elif 40 <= code <= 47:
            bg = code - 40
        elif 90 <= code <= 97:
            fg = code - 90 + 8
        elif 100 <= code <= 107:
            bg = code - 100 + 8
        elif code == 39:
            fg = None
        elif code == 49:
            bg = None
        elif code in (38, 48, 58):
            colour, i = _extended_colour(codes, i - 1)
            if code == 38:
                fg = colour
            elif code == 48:
                bg = colour
        elif code in _SET_FLAG:
            flags |= _SET_FLAG[code]
        elif code in _CLEAR_FLAG:
            flags &= ~_CLEAR_FLAG[code]
    return (fg, bg, flags)


def _rich_colour(colour: Colour) -> Color | None:
    if colour is None:
        return None
    if isinstance(colour, int):
        return Color.from_ansi(colour)
    return Color.from_rgb(*colour)


@lru_cache(maxsize=4096)
def pen_style(pen: Pen) -> Style | None:
    """The Rich style for a pen, or ``None`` for the default pen."""
    if pen == DEFAULT_PEN:
        return None
    fg, bg, flags = pen
    kwargs: dict[str, Any] = {}
    for flag, name in ((BOLD, "bold"), (DIM, "dim"), (ITALIC, "italic"),
                       (UNDERLINE, "underline"), (BLINK, "blink"), (REVERSE, "reverse"),
                       (CONCEAL, "conceal"), (STRIKE, "strike"), (OVERLINE, "overline")):
        if flags & flag:
            kwargs[name] = True
    return Style(color=_rich_colour(fg), bgcolor=_rich_colour(bg), **kwargs)
