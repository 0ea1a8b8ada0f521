"""Pane tiling: side by side for a few hosts, a grid beyond, compact from 10."""

from __future__ import annotations

import pytest

from tui.widgets.tiling import Tiling, tile


@pytest.mark.parametrize(("count", "width", "height", "expected"), [
    (1, 200, 50, Tiling(1, 1, False)),
    (3, 200, 50, Tiling(3, 1, False)),
    (4, 200, 50, Tiling(4, 1, False)),
    (3, 100, 50, Tiling(2, 2, False, 2)),  # too narrow for three: the third spans the row
    (3, 80, 24, Tiling(2, 2, False, 2)),   # no empty quadrant at 80x24
    (5, 120, 50, Tiling(3, 2, False, 2)),
    (7, 120, 50, Tiling(3, 3, False, 3)),
    (4, 120, 50, Tiling(2, 2, False)),
    (6, 200, 50, Tiling(3, 2, False)),
    (9, 200, 50, Tiling(3, 3, False)),
    (12, 200, 50, Tiling(4, 3, True)),
    (12, 80, 24, Tiling(2, 6, True, scroll=True)),  # rows keep 6 lines; the grid scrolls
    (30, 80, 18, Tiling(2, 15, True, scroll=True)),
    (30, 200, 44, Tiling(5, 6, True)),  # 6 rows of 7 lines fit: no scrolling
    (3, 80, 5, Tiling(2, 2, False, 2, scroll=True)),
    (0, 80, 24, Tiling(1, 1, False)),
])
def test_tile(count: int, width: int, height: int, expected: Tiling) -> None:
    assert tile(count, width, height) == expected


def test_every_pane_has_a_cell() -> None:
    for count in range(1, 40):
        for width in (80, 120, 200):
            t = tile(count, width, 50)
            assert t.columns * t.rows >= count
            assert t.columns * 40 <= max(width, 40)


def test_no_cell_is_left_empty() -> None:
    for count in range(1, 40):
        for width in (80, 120, 200):
            t = tile(count, width, 50)
            assert (count - 1) + t.last_span == t.columns * t.rows, t
