"""How console panes are tiled for a number of hosts and a terminal size (pure logic)."""

from __future__ import annotations

import math
from dataclasses import dataclass

COMPACT_FROM = 10
"""From this many hosts on, panes are compact (a few rows each) and zoom shows one."""

MIN_PANE_COLUMNS = 40
"""Narrowest useful pane: below this, hosts wrap onto another row."""

MIN_PANE_ROWS = 6
"""Lowest useful pane (its border and four lines of output): when the rows of panes do
not fit at this height, the grid scrolls instead of squeezing them."""


@dataclass(frozen=True)
class Tiling:
    """Grid columns and rows for the panes, and whether the grid is compact."""

    columns: int
    rows: int
    compact: bool
    last_span: int = 1
    """Columns the last pane spans, so a short last row leaves no empty cell (3 hosts in
    two columns: the third pane takes the whole bottom row)."""
    scroll: bool = False
    """The rows do not fit at :data:`MIN_PANE_ROWS` each: they keep that height and the
    grid scrolls (30 hosts at 80x24), following the focused pane."""


def tile(count: int, width: int, height: int) -> Tiling:
    """Choose a grid for ``count`` panes in ``width`` x ``height`` cells.

    Side by side while each pane keeps at least MIN_PANE_COLUMNS columns (so 3-4 hosts
    on a wide terminal sit in one row, like tmux's even-horizontal), a near-square grid
    beyond, and a compact grid from COMPACT_FROM hosts on.
    """
    if count <= 0:
        return Tiling(1, 1, False)
    compact = count >= COMPACT_FROM
    fit = max(1, width // MIN_PANE_COLUMNS)
    if count <= 4 and count <= fit:
        return Tiling(count, 1, compact, scroll=height < MIN_PANE_ROWS)
    columns = min(fit, math.ceil(math.sqrt(count)))  # near-square, capped by the width
    rows = math.ceil(count / columns)
    remainder = count % columns
    return Tiling(columns, rows, compact, columns - remainder + 1 if remainder else 1,
                  scroll=rows * MIN_PANE_ROWS > height)
