"""The footer keeps whole keys that fit, never dropping quit and the ctrl+g escape."""

from __future__ import annotations

from textual.binding import Binding

from tui.widgets.footer import fit, key_width


def _items(*specs: tuple[str, str, str | None]) -> list[tuple[Binding, str, int]]:
    return [(Binding(key, f"act_{key}", desc, id=ident), key,
             key_width(key, desc, False)) for key, desc, ident in specs]


KEYS = _items(("^c", "Interrupt", None), ("f1", "Bar", None), ("f4", "Type-through", None),
              ("f10", "Search", None), ("^q", "Quit", "quit"), ("^g", "Screens…", "prefix"))


def test_everything_fits_in_a_wide_footer() -> None:
    assert fit(KEYS, 200) == ([0, 1, 2, 3, 4, 5], False)


def test_keys_are_dropped_from_the_end_but_never_quit_and_the_escape() -> None:
    widths = [cells for _b, _k, cells in KEYS]
    assert widths == [14, 8, 17, 12, 9, 13]
    kept, dropped = fit(KEYS, 14 + 8 + 9 + 13)
    assert kept == [0, 1, 4, 5] and dropped
    kept, dropped = fit(KEYS, 22)  # too narrow even for those two: they stay anyway
    assert kept == [4, 5] and dropped


def test_compact_keys_are_narrower() -> None:
    assert key_width("f1", "Bar", True) == 6 and key_width("f1", "Bar", False) == 8
