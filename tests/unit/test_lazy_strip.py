"""LazyStrip behaves as a Textual Strip and tracks Strip's slots."""

from __future__ import annotations

from rich.console import Console
from rich.segment import Segment
from rich.style import Style
from textual.strip import Strip

from tui.widgets.strips import EAGER_SLOTS, LAZY_CACHES, LazyStrip

SEGMENTS = [Segment("hello ", Style(bold=True)), Segment("world", Style(color="red"))]


def test_lazy_strip_knows_every_slot_of_textual_strip() -> None:
    """A Textual upgrade that adds or renames a Strip slot must fail here, not at render."""
    assert set(Strip.__slots__) == set(LAZY_CACHES) | set(EAGER_SLOTS)


def test_lazy_strip_divides_crops_and_renders_like_strip() -> None:
    lazy, plain = LazyStrip(list(SEGMENTS), 11), Strip(list(SEGMENTS), 11)
    assert lazy.text == plain.text == "hello world"
    assert [s.text for s in lazy.divide([3, 11])] == [s.text for s in plain.divide([3, 11])]
    assert lazy.divide([11]) == [lazy]
    assert lazy.crop(2, 8).text == plain.crop(2, 8).text == "llo wo"
    assert lazy.crop(2, 8) is lazy.crop(2, 8)  # the crop cache was made and is used
    assert lazy.apply_style(Style(italic=True)).text == "hello world"
    assert lazy.crop_extend(0, 14, None).cell_length == 14
    console = Console(color_system="truecolor", force_terminal=True)
    assert lazy.render(console) == plain.render(console)
    assert lazy.cell_length == plain.cell_length == 11
